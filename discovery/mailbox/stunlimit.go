package mailbox

import (
	"container/list"
	"net/netip"
	"sync"
	"time"

	"ferry/transport"
)

// STUN answer limits. A Binding request is one UDP datagram whose source
// address anyone can forge, so every answer is a datagram the server may be
// firing at a victim. The answer is already as small as STUN allows (32
// bytes, 44 over IPv6, for a request of at least 20); these limits bound how
// many answers one source gets, so that a flood reflected off the server
// returns less than it sent.
const (
	// stunBurst is how many answers a source with a full bucket gets at
	// once. One query sends at most 4 requests (the client's retransmits),
	// and everyone behind one NAT address shares a bucket: 16 lets four
	// clients there start at the same moment. Against a flood it is the
	// whole up-front reward: 16 answers, at most 704 bytes, however large
	// the flood.
	stunBurst = 16
	// stunRate is the refill, in answers per second: a fresh query every
	// second from one address, far more than ferry needs (it asks once per
	// pairing and after a network change), while a spoofer can aim at most
	// 4 × 44 = 176 bytes a second at one victim.
	stunRate = 4
	// stunMaxSources caps the sources tracked (about 200 bytes each), so
	// the table stays under a megabyte however many forged addresses a
	// flood uses. When it is full the least recently seen source is
	// forgotten: one quiet for stunBurst/stunRate = 4 s has refilled its
	// bucket, and forgetting it loses nothing.
	stunMaxSources = 4096
)

// stunLimiter is the per-source token bucket for STUN answers, keyed by the
// source's IP address (its /64 for IPv6), never its port: a spoofer hopping
// ports gets no fresh bucket. It holds at most stunMaxSources sources,
// dropping the least recently seen. The zero value is ready to use; it is
// safe for concurrent use (one Server may serve several UDP sockets).
type stunLimiter struct {
	mu      sync.Mutex
	sources map[netip.Prefix]*list.Element // of *stunSource
	lru     list.List                      // of *stunSource, most recently seen first
}

type stunSource struct {
	key    netip.Prefix
	bucket tokenBucket
}

// stunSourceKey returns the key ip is counted under: transport.SourceKey,
// the relay's too (an IPv4 address, an IPv6 /64).
func stunSourceKey(ip netip.Addr) netip.Prefix { return transport.SourceKey(ip) }

// allow reports whether a packet from ip may be answered at now, taking a
// token from its bucket if so.
func (l *stunLimiter) allow(ip netip.Addr, now time.Time) bool {
	key := stunSourceKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.sources[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*stunSource).bucket.allow(now)
	}
	if l.sources == nil {
		l.sources = make(map[netip.Prefix]*list.Element)
	}
	var src *stunSource
	if len(l.sources) >= stunMaxSources {
		// Reuse the least recently seen source's entry: under a flood of
		// forged sources the table neither grows nor allocates.
		e := l.lru.Back()
		src = e.Value.(*stunSource)
		delete(l.sources, src.key)
		l.lru.MoveToFront(e)
		l.sources[key] = e
	} else {
		src = new(stunSource)
		l.sources[key] = l.lru.PushFront(src)
	}
	src.key, src.bucket = key, *newTokenBucket(stunRate, stunBurst, now)
	return src.bucket.allow(now)
}

// len returns the number of sources tracked.
func (l *stunLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sources)
}
