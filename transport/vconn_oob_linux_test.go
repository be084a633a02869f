package transport

import (
	"bytes"
	"testing"

	"golang.org/x/net/ipv4"
)

// TestOOBVconnReleasesSlabsInRuns: quic-go's batch read through the vconn
// copies every packet out and releases each slab's references in runs; with
// packets of two slabs interleaved (two readers, after a rebind) both slabs
// still come back exactly when their last packet is read, and not before.
func TestOOBVconnReleasesSlabsInRuns(t *testing.T) {
	var pool slabPool
	a, b := pool.get(), pool.get()
	a.refs.Store(3)
	b.refs.Store(3)
	v := &oobVconn{vconn: newVconn(&endpoint{cids: &cidGenerator{}}, &pktPool{})}
	var want [][]byte
	for i, s := range []*rxSlab{a, a, b, a, b} {
		p := s.buf[i*100 : i*100+50]
		for j := range p {
			p[j] = byte(i + 1)
		}
		want = append(want, p)
		v.deliver(rxPkt{b: p, slab: s})
	}
	v.deliver(rxPkt{b: []byte("own buffer"), pb: new(pktBuf)})
	want = append(want, []byte("own buffer"))
	ms := make([]ipv4.Message, readBatchLen)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, pktBufSize)}
	}
	n, err := v.ReadBatch(ms, 0)
	if err != nil || n != len(want) {
		t.Fatalf("ReadBatch: %d packets, %v; want %d", n, err, len(want))
	}
	for i := range n {
		if !bytes.Equal(ms[i].Buffers[0][:ms[i].N], want[i]) {
			t.Fatalf("packet %d: got %x, want %x", i, ms[i].Buffers[0][:ms[i].N], want[i])
		}
	}
	// b still holds one reference of its three: not back yet; a is.
	if got, want := pool.outstanding(), 1; got != want {
		t.Fatalf("%d slabs out, want %d (b, with one packet not yet delivered)", got, want)
	}
	if r := b.refs.Load(); r != 1 {
		t.Fatalf("b holds %d references, want 1", r)
	}
	b.release(1)
	if got := pool.outstanding(); got != 0 {
		t.Fatalf("%d slabs out after the last reference went, want 0", got)
	}
}
