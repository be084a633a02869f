package transport

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// putGROCmsg writes a UDP_GRO control message holding size, as the kernel
// builds it, into b and returns its length.
func putGROCmsg(b []byte, size int32) int {
	n := cmsgAlign(cmsgHdrLen + 4)
	clear(b[:n])
	putCmsgHeader(b, cmsgHdrLen+4, unix.IPPROTO_UDP, unix.UDP_GRO)
	binary.NativeEndian.PutUint32(b[cmsgHdrLen:], uint32(size))
	return n
}

func TestGROSegmentSize(t *testing.T) {
	var gro, seg [32]byte
	n := putGROCmsg(gro[:], 1200)
	if n != unix.CmsgSpace(4) {
		t.Fatalf("UDP_GRO message takes %d bytes, CmsgSpace(4) = %d", n, unix.CmsgSpace(4))
	}
	m := putSegmentSizeCmsg(seg[:], 1200)
	neg := make([]byte, n)
	putGROCmsg(neg, -5)
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"gro", gro[:n], 1200},
		{"unpadded", gro[:cmsgHdrLen+4], 1200},
		{"after other", append(unix.UnixRights(7), gro[:n]...), 1200},
		{"after segment", append(append([]byte(nil), seg[:m]...), gro[:n]...), 1200},
		{"none", nil, 0},
		{"segment only", seg[:m], 0},
		{"short payload", gro[:cmsgHdrLen+3], 0},
		{"short header", gro[:cmsgHdrLen-1], 0},
		{"negative", neg, 0},
	} {
		if got := groSegmentSize(tc.oob); got != tc.want {
			t.Errorf("%s: groSegmentSize = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func FuzzGROSegmentSize(f *testing.F) {
	var oob [32]byte
	n := putGROCmsg(oob[:], 1200)
	f.Add(oob[:n])
	f.Add(append(unix.UnixRights(3), oob[:n]...))
	f.Add(oob[:cmsgHdrLen+2])
	putGROCmsg(oob[:], -1)
	f.Add(oob[:n])
	m := putSegmentSizeCmsg(oob[:], 1200)
	f.Add(oob[:m])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got := groSegmentSize(b); got < 0 || got > math.MaxInt32 {
			t.Fatalf("segment size %d out of range", got)
		}
	})
}

// groPair is a sending socket and, on loopback, a carrier reading with
// UDP_GRO; the test is skipped where the kernel offers no GSO or GRO.
func groPair(t *testing.T) (send *net.UDPConn, c *udpCarrier) {
	t.Helper()
	c = newUDPCarrier(listenLoopback(t))
	if c.gro == nil {
		t.Skip("kernel refused UDP_GRO")
	}
	send = listenLoopback(t)
	if !gsoSupported(send) {
		t.Skip("kernel offers no UDP_SEGMENT")
	}
	return send, c
}

// listenLoopback opens a UDP socket on 127.0.0.1, closed with the test.
func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = udp.Close() })
	return udp
}

// gsoBatch returns count datagrams of size bytes each and a last one of
// last bytes, each with its own content, and their concatenation.
func gsoBatch(seed byte, count, size, last int) (dgrams [][]byte, batch []byte) {
	for i := range count + 1 {
		d := make([]byte, size)
		if i == count {
			d = d[:last]
		}
		for j := range d {
			d[j] = seed + byte(i)*31 + byte(j)
		}
		dgrams = append(dgrams, d)
		batch = append(batch, d...)
	}
	return dgrams, batch
}

// readAll reads want datagrams from c through width-entry batches of
// pktBufSize buffers, within a deadline, and returns them with each call's
// count.
func readAll(t *testing.T, c *udpCarrier, width, want int) (got []Datagram, calls []int) {
	t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	ds := make([]Datagram, width)
	for len(got) < want {
		for i := range ds {
			ds[i] = Datagram{Buf: make([]byte, pktBufSize)}
		}
		n, err := c.ReadBatch(ds)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d datagrams: %v", len(got), want, err)
		}
		if n < 1 || n > width {
			t.Fatalf("ReadBatch returned %d of %d", n, width)
		}
		calls = append(calls, n)
		got = append(got, ds[:n]...)
	}
	if len(got) != want {
		t.Fatalf("read %d datagrams, want %d", len(got), want)
	}
	return got, calls
}

// checkDatagrams compares what was read with what was sent, in order.
func checkDatagrams(t *testing.T, got []Datagram, want [][]byte, from netip.AddrPort) {
	t.Helper()
	for i, d := range got {
		if !bytes.Equal(d.payload(), want[i]) {
			t.Fatalf("datagram %d: %d bytes, want %d bytes of its own content", i, d.N, len(want[i]))
		}
		if d.From != from {
			t.Fatalf("datagram %d from %v, want %v", i, d.From, from)
		}
	}
}

// TestGROSplitsCoalescedBatches sends GSO batches over loopback to a carrier
// with UDP_GRO on, which the kernel hands over whole, and checks the carrier
// returns every datagram, byte-exact, in order and with its source, also
// when ds is too short for a batch and the rest waits for the next calls.
func TestGROSplitsCoalescedBatches(t *testing.T) {
	for _, width := range []int{1, 4, readBatchLen} {
		send, c := groPair(t)
		from := send.LocalAddr().(*net.UDPAddr).AddrPort()
		to := c.LocalAddr()
		first, b1 := gsoBatch(1, 10, 1200, 345)
		second, b2 := gsoBatch(99, 5, 1452, 1)
		single := []byte("one plain datagram")
		if err := writeGSO(send, b1, 1200, to); err != nil {
			t.Fatal(err)
		}
		if err := writeGSO(send, b2, 1452, to); err != nil {
			t.Fatal(err)
		}
		if _, err := send.WriteToUDPAddrPort(single, to); err != nil {
			t.Fatal(err)
		}
		want := append(append(first, second...), single)
		got, calls := readAll(t, c, width, len(want))
		checkDatagrams(t, got, want, from)
		st := c.gro.stats()
		t.Logf("width %d: calls %v, %+v", width, calls, st)
		if st.Coalesced != 2 {
			t.Fatalf("width %d: %d coalesced buffers, want 2 (the kernel did not keep the GSO batches whole)", width, st.Coalesced)
		}
		if st.Buffers != 3 || st.Datagrams != uint64(len(want)) || st.Dropped != 0 {
			t.Fatalf("width %d: stats %+v, want 3 buffers, %d datagrams, none dropped", width, st, len(want))
		}
		// A batch wider than ds was handed out over several calls from
		// one recvmmsg: calls without a system call.
		if width < len(first) && uint64(len(calls)) <= st.Reads {
			t.Fatalf("width %d: %d calls took %d system calls", width, len(calls), st.Reads)
		}
	}
}

// TestGRODropsOversizedSegments checks that segments larger than the
// caller's buffers are dropped and counted, not truncated, and that reading
// goes on past them.
func TestGRODropsOversizedSegments(t *testing.T) {
	send, c := groPair(t)
	to := c.LocalAddr()
	_, big := gsoBatch(7, 3, pktBufSize+100, 10)
	if err := writeGSO(send, big, pktBufSize+100, to); err != nil {
		t.Fatal(err)
	}
	after := []byte("after the oversized batch")
	if _, err := send.WriteToUDPAddrPort(after, to); err != nil {
		t.Fatal(err)
	}
	// Send a datagram too large on its own, then one that fits.
	if _, err := send.WriteToUDPAddrPort(make([]byte, pktBufSize+1), to); err != nil {
		t.Fatal(err)
	}
	if _, err := send.WriteToUDPAddrPort(after[:5], to); err != nil {
		t.Fatal(err)
	}
	from := send.LocalAddr().(*net.UDPAddr).AddrPort()
	// The batch's short last segment fits and is kept.
	got, _ := readAll(t, c, 4, 3)
	checkDatagrams(t, got, [][]byte{big[len(big)-10:], after, after[:5]}, from)
	if st := c.gro.stats(); st.Dropped != 4 {
		t.Fatalf("stats %+v, want 4 dropped (3 segments, 1 datagram)", st)
	}
}

// TestUDPCarrierWithoutGRO checks the carrier as it is where the kernel
// refuses UDP_GRO: recvmmsg straight into the caller's buffers, with the
// kernel cutting GSO batches into datagrams before they are queued.
func TestUDPCarrierWithoutGRO(t *testing.T) {
	send, c := groPair(t)
	// What newUDPCarrier does when the kernel refuses UDP_GRO.
	rc, err := c.udp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 0)
	}); err != nil || serr != nil {
		t.Fatalf("turn UDP_GRO off: %v, %v", err, serr)
	}
	c.gro, c.batch = nil, newBatchReader(c.udp)

	from := send.LocalAddr().(*net.UDPAddr).AddrPort()
	want, batch := gsoBatch(3, 10, 1200, 345)
	if err := writeGSO(send, batch, 1200, c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, c, 4, len(want))
	checkDatagrams(t, got, want, from)
	// One at a time, as the read loop never does but the carrier allows.
	if _, err := send.WriteToUDPAddrPort(want[0], c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, _ = readAll(t, c, 1, 1)
	checkDatagrams(t, got, want[:1], from)
}

// TestGROHandsOutSlabViews checks the zero-copy path: coalesced datagrams
// come as views into slabs, byte-exact, and every slab goes back to the
// pool once its datagrams are released, whatever order they are released
// in, oversized segments (dropped) included.
func TestGROHandsOutSlabViews(t *testing.T) {
	send, c := groPair(t)
	from := send.LocalAddr().(*net.UDPAddr).AddrPort()
	to := c.LocalAddr()
	first, b1 := gsoBatch(1, 10, 1200, 345)
	if err := writeGSO(send, b1, 1200, to); err != nil {
		t.Fatal(err)
	}
	_, big := gsoBatch(7, 3, pktBufSize+100, 10) // three dropped, the short last kept
	if err := writeGSO(send, big, pktBufSize+100, to); err != nil {
		t.Fatal(err)
	}
	single := []byte("one plain datagram")
	if _, err := send.WriteToUDPAddrPort(single, to); err != nil {
		t.Fatal(err)
	}
	want := append(append(first, big[len(big)-10:]), single)
	got, _ := readAll(t, c, 4, len(want))
	checkDatagrams(t, got, want, from)
	for i, d := range got {
		if d.slab == nil {
			t.Fatalf("datagram %d was copied, want a view into a slab", i)
		}
	}
	// One recvmmsg read the three messages into three of the groBuffers
	// slabs armed for it; the others wait, armed, for the next read.
	if n := c.gro.pool.outstanding(); n != groBuffers {
		t.Fatalf("%d slabs out, want %d", n, groBuffers)
	}
	for i := len(got) - 1; i >= 0; i-- { // backwards: order does not matter
		got[i].slab.release(1)
		// got[0] and got[1] are the first batch's: with one of them
		// still held, its slab is out; the other two slabs are back.
		if i == 1 && c.gro.pool.outstanding() != groBuffers-2 {
			t.Fatalf("%d slabs out with one datagram held, want %d", c.gro.pool.outstanding(), groBuffers-2)
		}
	}
	if n := c.gro.pool.outstanding(); n != groBuffers-3 {
		t.Fatalf("%d slabs out after every datagram was released, want %d", n, groBuffers-3)
	}
}

// TestGROCopiesWhenSlabsRunOut checks that a reader whose slabs are all out
// (datagrams held in a long queue, or a flood) reads on into its own
// buffers and copies, losing nothing, and returns to views once slabs come
// back.
func TestGROCopiesWhenSlabsRunOut(t *testing.T) {
	send, c := groPair(t)
	c.gro.pool.limit = groBuffers + 1
	from := send.LocalAddr().(*net.UDPAddr).AddrPort()
	to := c.LocalAddr()
	// One batch per read, every datagram held: the first read has the
	// armed slabs, the second the one slab left under the limit, the
	// third none.
	var got []Datagram
	for i := range 3 {
		want, b := gsoBatch(byte(10*i), 5, 1300, 77)
		if err := writeGSO(send, b, 1300, to); err != nil {
			t.Fatal(err)
		}
		read, _ := readAll(t, c, readBatchLen, len(want))
		checkDatagrams(t, read, want, from)
		for j, d := range read {
			if view := d.slab != nil; view != (i < 2) {
				t.Fatalf("read %d, datagram %d: view %v, want %v", i, j, view, i < 2)
			}
		}
		got = append(got, read...)
	}
	for _, d := range got {
		if d.slab != nil {
			d.slab.release(1)
		}
	}
	d, b := gsoBatch(99, 5, 1300, 77)
	if err := writeGSO(send, b, 1300, to); err != nil {
		t.Fatal(err)
	}
	got, _ = readAll(t, c, readBatchLen, len(d))
	checkDatagrams(t, got, d, from)
	if got[0].slab == nil {
		t.Fatal("slabs came back, but the reader still copies")
	}
}

// TestGROSlabsComeBackWhateverTheShapes sends GSO batches of many shapes
// (segment sizes, counts, a short last segment, segments too large for the
// caller's buffers, single datagrams), reads them through batches of
// random widths, releases the views in a random order, and checks every
// datagram byte for byte and that no slab is left out but the ones the
// reader has armed for its next read.
func TestGROSlabsComeBackWhateverTheShapes(t *testing.T) {
	send, c := groPair(t)
	from := send.LocalAddr().(*net.UDPAddr).AddrPort()
	to := c.LocalAddr()
	rng := rand.New(rand.NewPCG(15, 2))
	for round := range 40 {
		var want [][]byte
		for b := range 1 + rng.IntN(6) {
			seed := byte(round*7 + b)
			if rng.IntN(4) == 0 {
				d := bytes.Repeat([]byte{seed}, 1+rng.IntN(pktBufSize))
				if _, err := send.WriteToUDPAddrPort(d, to); err != nil {
					t.Fatal(err)
				}
				want = append(want, d)
				continue
			}
			seg := 64 + rng.IntN(pktBufSize+300-64)
			count := 1 + rng.IntN(min(20, 60000/seg))
			last := seg // a batch of equal segments, or one with a short last one
			if rng.IntN(3) > 0 {
				last = 1 + rng.IntN(seg)
			}
			dgrams, batch := gsoBatch(seed, count, seg, last)
			if err := writeGSO(send, batch, seg, to); err != nil {
				t.Fatal(err)
			}
			for _, d := range dgrams {
				if len(d) <= pktBufSize {
					want = append(want, d)
				}
			}
		}
		got, _ := readAll(t, c, 1+rng.IntN(readBatchLen), len(want))
		checkDatagrams(t, got, want, from)
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		for _, d := range got {
			if d.slab != nil {
				d.slab.release(1)
			}
		}
		armed := 0
		for _, s := range c.gro.slabs {
			if s != nil {
				armed++
			}
		}
		if n := c.gro.pool.outstanding(); n != armed {
			t.Fatalf("round %d: %d slabs out after every datagram was released, want the %d armed", round, n, armed)
		}
	}
}
