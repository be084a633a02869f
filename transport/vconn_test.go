package transport

import "testing"

func TestSplitSegments(t *testing.T) {
	var sizes []int
	b := make([]byte, 1000)
	if err := splitSegments(b, 300, func(d []byte) error { sizes = append(sizes, len(d)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 4 || sizes[0] != 300 || sizes[3] != 100 {
		t.Fatalf("segments %v, want 300,300,300,100", sizes)
	}
}

// TestPktPoolBatches: buffers given back in batches come out again once
// each, the free list holds at most pktFreeMax, and getAll tops up from the
// pool when the list runs dry.
func TestPktPoolBatches(t *testing.T) {
	var p pktPool
	in := make([]*pktBuf, pktFreeMax+100)
	for i := range in {
		in[i] = new(pktBuf)
	}
	p.putAll(in)
	if len(p.free) != pktFreeMax {
		t.Fatalf("free list holds %d, want %d", len(p.free), pktFreeMax)
	}
	out := make([]*pktBuf, pktFreeMax+10)
	p.getAll(out)
	seen := map[*pktBuf]bool{}
	fromList := 0
	listed := map[*pktBuf]bool{}
	for _, b := range in[:pktFreeMax] {
		listed[b] = true
	}
	for i, b := range out {
		if b == nil {
			t.Fatalf("getAll left entry %d empty", i)
		}
		if seen[b] {
			t.Fatalf("buffer %p handed out twice", b)
		}
		seen[b] = true
		if listed[b] {
			fromList++
		}
	}
	if fromList != pktFreeMax || len(p.free) != 0 {
		t.Fatalf("%d buffers came from the free list (want %d), %d left", fromList, pktFreeMax, len(p.free))
	}
}

// TestVconnReleasesSlabsItCannotDeliver: a packet the vconn drops (its
// queue full) or will never hand to quic-go (closed, before or after the
// packet came) gives its slab reference back, so a closed connection holds
// no slab out of its reader's pool.
func TestVconnReleasesSlabsItCannotDeliver(t *testing.T) {
	var slabs slabPool
	view := func() rxPkt {
		s := slabs.get()
		s.refs.Store(1)
		return rxPkt{b: s.buf[:100], slab: s}
	}
	v := newVconn(&endpoint{cids: &cidGenerator{}}, &pktPool{})
	for range vconnQueueLen {
		v.deliver(rxPkt{b: make([]byte, 100), pb: new(pktBuf)})
	}
	v.deliver(view())
	if n := slabs.outstanding(); n != 0 || v.ep.counters.queueDrops.Load() != 1 {
		t.Fatalf("full queue: %d slabs out, %d drops; want 0 and 1", n, v.ep.counters.queueDrops.Load())
	}
	v.drain()
	for range 3 {
		v.deliver(view())
	}
	if n := slabs.outstanding(); n != 3 {
		t.Fatalf("%d slabs out with 3 packets queued, want 3", n)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if n := slabs.outstanding(); n != 0 {
		t.Fatalf("%d slabs out after Close, want 0", n)
	}
	v.deliver(view())
	if n := slabs.outstanding(); n != 0 {
		t.Fatalf("%d slabs out after a packet came to a closed vconn, want 0", n)
	}
	if _, _, err := v.ReadFrom(make([]byte, 2048)); err == nil {
		t.Fatal("ReadFrom on a closed vconn returned no error")
	}
}
