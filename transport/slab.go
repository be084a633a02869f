package transport

import (
	"cmp"
	"sync"
	"sync/atomic"
)

// Receive slabs: with UDP_GRO (gro_linux.go) the kernel writes a batch of
// coalesced datagrams into one 64 KiB buffer. The datagrams then travel to
// quic-go as views into that buffer (rxPkt), not as copies in a buffer of
// their own each: between the kernel's write and the copy into quic-go's
// buffer nothing copies them. On loopback, where every GSO batch arrives
// whole, that saved the receiver a copy of every byte and a cache miss on
// every datagram's own buffer (issue 15; numbers in docs/BENCHMARKS.md).
//
// A slab goes back to its pool when the last of its datagrams is released;
// each datagram holds one reference. Datagrams may wait in an endpoint's
// queue for a while (hundreds of them while quic-go catches up), so a
// reader keeps at most slabMax slabs out; beyond that it reads into its own
// buffers and copies, as it does without slabs. That also bounds what a
// flood of uncoalesced datagrams, one per 64 KiB slab, can hold.

// slabSize is a slab's size: a coalesced buffer never exceeds the 64 KiB
// of one IP packet.
const slabSize = 64 << 10

// slabMax bounds the slabs one reader has out: 16 MiB. On loopback the
// endpoint's queue held 256 to 2047 datagrams during a 1 GiB transfer
// (about 15 to a slab: 17 to 136 slabs).
const slabMax int32 = 256

// rxSlab is one receive buffer whose datagrams are handed out as views.
type rxSlab struct {
	buf  [slabSize]byte
	refs atomic.Int32 // datagrams of it not yet released
	home *slabPool
}

// release drops n references; the last one returns the slab to its pool.
// Releasing more than was referenced means a datagram may already be
// overwritten by the next read: like a negative sync.WaitGroup, that
// panics.
func (s *rxSlab) release(n int32) {
	switch r := s.refs.Add(-n); {
	case r == 0:
		s.home.put(s)
	case r < 0:
		panic("transport: receive slab released more often than referenced")
	}
}

// slabPool holds one reader's free slabs. The reader takes them; whoever
// releases a slab's last datagram (quic-go's reader, usually on another
// core) gives it back. Free slabs sit in a sync.Pool, so the garbage
// collector takes them back from a socket that has gone quiet.
type slabPool struct {
	free  sync.Pool
	out   atomic.Int32 // slabs taken and not given back
	limit int32        // slabs that may be out; 0: slabMax
}

// get returns a free or new slab while fewer than the limit are out, or
// nil.
func (p *slabPool) get() *rxSlab {
	if p.out.Add(1) > cmp.Or(p.limit, slabMax) {
		p.out.Add(-1)
		return nil
	}
	if s, _ := p.free.Get().(*rxSlab); s != nil {
		return s
	}
	return &rxSlab{home: p}
}

// put takes back a slab none of whose datagrams is referenced any more.
func (p *slabPool) put(s *rxSlab) {
	p.free.Put(s)
	p.out.Add(-1)
}

// outstanding is how many slabs are out (held by the reader or by
// datagrams not yet released).
func (p *slabPool) outstanding() int { return int(p.out.Load()) }

// rxPkt is one received QUIC packet on its way to quic-go: b, held either
// in a pooled buffer of its own (pb) or in a slab (slab), never both.
type rxPkt struct {
	b    []byte
	pb   *pktBuf
	slab *rxSlab
}
