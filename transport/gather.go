package transport

import (
	"context"
	"time"
)

// Gatherer learns this side's candidates now: its host addresses and what
// servers see (STUN, the rendezvous server's address query). Package
// discovery provides one; the transport does not know the servers.
type Gatherer func(ctx context.Context) []Announced

// SetGatherer installs the function the Socket calls after a network
// change, or when a connection's path went silent, to learn where this
// side can be reached now; every connected peer is told the result
// (announce.go). Without one, peers learn nothing after a change and a
// move is found only by passive migration, the relay, or a reconnect.
func (s *Socket) SetGatherer(g Gatherer) {
	if g == nil {
		s.gather.Store(nil)
		return
	}
	s.gather.Store(&g)
}

// CandidatesChanged says this side's candidates changed without a change
// of network (a router mapped a port after the offer went out): the
// Socket gathers again and tells every connected peer, as after a change.
func (s *Socket) CandidatesChanged() { s.requestGather() }

// requestGather asks the gather loop to learn and announce this side's
// candidates.
func (s *Socket) requestGather() {
	select {
	case s.gatherReq <- struct{}{}:
	default:
	}
}

// gatherLoop runs one gathering at a time. A request that comes while one
// runs abandons it and starts over: the network changed again (a dead
// network, then the new one a moment later), and what the old gathering
// would learn is already stale. It exits when the Socket closes.
func (s *Socket) gatherLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.gatherReq:
		}
		for again := true; again; {
			again = s.gatherOnce()
		}
	}
}

// gatherOnce gathers and announces once; it reports whether a new request
// came meanwhile (and the result was dropped).
func (s *Socket) gatherOnce() (again bool) {
	g := s.gather.Load()
	if g == nil {
		return false
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	result := make(chan []Announced, 1)
	go func() { result <- (*g)(ctx) }()
	select {
	case cands := <-result:
		s.announce(cands)
		return false
	case <-s.gatherReq:
		cancel()
		<-result
		return true
	case <-s.done:
		cancel()
		<-result
		return false
	}
}

// announce tells every established connection's peer cands.
func (s *Socket) announce(cands []Announced) {
	s.log.Info("announcing this side's candidates", "count", len(cands))
	now := time.Now()
	for _, e := range s.router.endpoints() {
		e.mu.Lock()
		e.announceLocked(cands, now)
		e.mu.Unlock()
	}
}
