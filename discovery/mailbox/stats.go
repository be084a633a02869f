package mailbox

import (
	"maps"
	"sync"
	"sync/atomic"
)

// A Server counts what it does for metrics (`ferry rendezvous --metrics`
// exports them; this package knows nothing of the exporter). Everything is
// this Server's own view: with a shared store each server counts its own
// connections, and the fleet's figures are the sum over servers.
//
// A pairing, as the server sees it, is a nameplate allocated (a code
// handed out), and it belongs to the connection that allocated it: that
// connection alone counts its start and its outcome, so a pairing whose
// two sides are on different servers is counted once. Its outcome is the
// mood the allocating side closes its mailbox with (happy: completed;
// lonely, scary, errory: failed for that reason), or "expired" when the
// nameplate expired before a second side claimed it, or "disconnected"
// when the allocating connection ended without closing (a side that
// reconnects mid-pairing counts so too), or "server_stopped" when it
// ended because the server stopped or drained. Meets (sides that paired
// before meeting again) are not pairings; they are counted apart.

// Pairing failure reasons, the keys of ServerStats.PairingsFailed.
const (
	FailLonely        = string(Lonely)
	FailScary         = string(Scary)
	FailErrory        = string(Errory)
	FailExpired       = "expired"
	FailDisconnected  = "disconnected"
	FailServerStopped = "server_stopped"
)

// Limits whose refusals are counted, the keys of ServerStats.RateLimited.
const (
	// LimitRequests is the per-connection request rate (rate_limited).
	LimitRequests = "requests"
	// LimitNameplatesPerIP is the per-address bound on open nameplates
	// (too_many_nameplates).
	LimitNameplatesPerIP = "nameplates_per_ip"
)

// ServerStats are a Server's counters (since it started) and gauges (now).
type ServerStats struct {
	// Connections is the number of mailbox connections now.
	Connections int
	// Nameplates is the number of distinct nameplates this server's
	// connections hold now: allocated, claimed or met, and not yet
	// released, closed or left behind by the connection's end.
	Nameplates int
	// Mailboxes is the number of distinct mailboxes a connection of this
	// server has claimed and not yet closed (or ended).
	Mailboxes int

	// PairingsStarted counts nameplates allocated; PairingsCompleted those
	// whose allocating side closed happy; PairingsFailed the others by
	// reason (Fail*; every reason is present).
	PairingsStarted, PairingsCompleted uint64
	PairingsFailed                     map[string]uint64
	// Meets counts successful meets.
	Meets uint64

	// RateLimited counts refusals by limit (Limit*; every limit is present).
	RateLimited map[string]uint64
	// STUNAnswered counts STUN Binding requests answered (the answers
	// sent, a failed send included: it is logged); STUNRefused those
	// dropped because their source was over its budget.
	STUNAnswered, STUNRefused uint64
}

// serverStats is a Server's accounting behind Stats. The STUN counters are
// atomic (a flood must not contend for mu); the rest is under mu.
type serverStats struct {
	stunAnswered, stunRefused atomic.Uint64

	mu          sync.Mutex
	nameplates  map[string]int // nameplate -> connections holding it
	mailboxes   map[string]int // mailbox -> connections in it
	started     uint64
	completed   uint64
	failed      map[string]uint64
	meets       uint64
	rateLimited map[string]uint64
}

// countPairing counts a pairing's outcome: a mood, or a Fail* reason.
func (st *serverStats) countPairing(outcome string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if outcome == string(Happy) {
		st.completed++
		return
	}
	if st.failed == nil {
		st.failed = make(map[string]uint64)
	}
	st.failed[outcome]++
}

func (st *serverStats) countStarted() {
	st.mu.Lock()
	st.started++
	st.mu.Unlock()
}

func (st *serverStats) countMeet() {
	st.mu.Lock()
	st.meets++
	st.mu.Unlock()
}

func (st *serverStats) countRateLimited(limit string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rateLimited == nil {
		st.rateLimited = make(map[string]uint64)
	}
	st.rateLimited[limit]++
}

// hold adds one holder to name in *m (nameplates or mailboxes); drop
// removes one.
func (st *serverStats) hold(m *map[string]int, name string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if *m == nil {
		*m = make(map[string]int)
	}
	(*m)[name]++
}

func (st *serverStats) drop(m *map[string]int, name string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if (*m)[name]--; (*m)[name] <= 0 {
		delete(*m, name)
	}
}

// Stats returns the server's counters and gauges.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	conns := len(s.conns)
	s.mu.Unlock()
	st := &s.stats
	out := ServerStats{
		Connections:    conns,
		STUNAnswered:   st.stunAnswered.Load(),
		STUNRefused:    st.stunRefused.Load(),
		PairingsFailed: make(map[string]uint64),
		RateLimited:    make(map[string]uint64),
	}
	for _, r := range []string{FailLonely, FailScary, FailErrory, FailExpired, FailDisconnected, FailServerStopped} {
		out.PairingsFailed[r] = 0
	}
	for _, l := range []string{LimitRequests, LimitNameplatesPerIP} {
		out.RateLimited[l] = 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	out.Nameplates, out.Mailboxes = len(st.nameplates), len(st.mailboxes)
	out.PairingsStarted, out.PairingsCompleted, out.Meets = st.started, st.completed, st.meets
	maps.Copy(out.PairingsFailed, st.failed)
	maps.Copy(out.RateLimited, st.rateLimited)
	return out
}

// holdNameplate records that c holds np (once per connection);
// dropNameplate that it no longer does.
func (c *conn) holdNameplate(np string) {
	if c.held[np] {
		return
	}
	if c.held == nil {
		c.held = make(map[string]bool)
	}
	c.held[np] = true
	c.s.stats.hold(&c.s.stats.nameplates, np)
}

func (c *conn) dropNameplate(np string) {
	if !c.held[np] {
		return
	}
	delete(c.held, np)
	c.s.stats.drop(&c.s.stats.nameplates, np)
}

// leaveMailbox records that c left its mailbox (closed or ended).
func (c *conn) leaveMailbox() {
	if c.mailbox != "" && !c.leftMB {
		c.leftMB = true
		c.s.stats.drop(&c.s.stats.mailboxes, c.mailbox)
	}
}

// settlePairings counts the outcome of every pairing c allocated and has
// not settled yet: mood (if not empty) for the one whose mailbox it
// closed, the reason the connection ended for the rest. Reader goroutine
// (or cleanup, once the pusher stopped).
func (c *conn) settlePairings(mood Mood) {
	for _, np := range c.allocated {
		if c.settled[np] {
			continue
		}
		outcome := FailDisconnected
		switch {
		case np == c.nameplate && mood != "":
			outcome = string(mood)
		case mood != "":
			continue // closing another mailbox settles only its own
		case np == c.nameplate && c.expired.Load():
			outcome = FailExpired
		case c.s.isClosed():
			outcome = FailServerStopped
		}
		if c.settled == nil {
			c.settled = make(map[string]bool)
		}
		c.settled[np] = true
		c.s.stats.countPairing(outcome)
	}
}
