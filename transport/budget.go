package transport

import (
	"net/netip"
	"time"
)

// sendBudget keeps ferry from amplifying: an address that has not proven
// that the peer receives there (by answering a fresh challenge of this
// endpoint) may be sent at most as many control bytes as it has sent us.
// Every packet that reaches the endpoint from an address earns that address
// its length; every HELLO answer, probe, pong or path challenge sent to an
// unproven address spends its own. A spoofed source therefore draws no more
// bytes than it sent, over any flood, and a flood from thousands of sources
// costs a bounded table.
type sendBudget struct {
	credit map[netip.AddrPort]*budgetEntry
}

type budgetEntry struct {
	bytes int
	seen  time.Time
}

// Budget limits; see timing.go for the times.
const (
	// maxBudgetAddrs bounds the unproven addresses tracked per endpoint:
	// a real peer has a few (its candidates, a NAT's new mapping); beyond
	// this the address heard from longest ago is forgotten.
	maxBudgetAddrs = 64
	// maxBudgetBytes caps what one address can bank, so a burst earned
	// long ago cannot be spent as a burst later.
	maxBudgetBytes = 16 * MaxControlLen
)

func newSendBudget() *sendBudget {
	return &sendBudget{credit: make(map[netip.AddrPort]*budgetEntry)}
}

// earn credits a packets of n bytes received from a.
func (b *sendBudget) earn(a netip.AddrPort, n int, now time.Time) {
	e, ok := b.credit[a]
	if !ok {
		if len(b.credit) >= maxBudgetAddrs {
			b.evictOldest()
		}
		e = &budgetEntry{}
		b.credit[a] = e
	}
	e.bytes = min(e.bytes+n, maxBudgetBytes)
	e.seen = now
}

// spend takes n bytes of a's credit and reports whether it had them.
func (b *sendBudget) spend(a netip.AddrPort, n int) bool {
	e, ok := b.credit[a]
	if !ok || e.bytes < n {
		return false
	}
	e.bytes -= n
	return true
}

// forget drops a's entry: the address was proven, or left.
func (b *sendBudget) forget(a netip.AddrPort) { delete(b.credit, a) }

func (b *sendBudget) evictOldest() {
	delete(b.credit, oldest(b.credit, func(e *budgetEntry) time.Time { return e.seen }))
}

// expire forgets addresses not heard from since before cutoff.
func (b *sendBudget) expire(cutoff time.Time) {
	for a, e := range b.credit {
		if e.seen.Before(cutoff) {
			delete(b.credit, a)
		}
	}
}
