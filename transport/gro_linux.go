package transport

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// UDP generic receive offload (GRO) on Linux: with UDP_GRO set on a socket,
// the kernel may hand over several datagrams of one flow in one buffer (all
// of one size, the last possibly shorter) with a UDP_GRO control message
// holding that size, instead of one datagram per receive. On loopback a
// sender's GSO batch (gso_linux.go) arrives whole, so a receive costs one
// copy and one trip through the socket per batch rather than per datagram.
// The carrier reads such buffers into slabs (slab.go) and hands their
// datagrams out as views, or, when its slabs are all out, into its own
// buffers, cutting them into copies in the caller's datagram buffers
// (groReader.ReadBatch).

const (
	// groBufSize is the size of each of the reader's receive buffers.
	groBufSize = slabSize
	// groBuffers is how many buffers (datagrams, or batches of them) one
	// recvmmsg fills at most.
	groBuffers = 16
	// groOOBSize is the control-message space per buffer: the UDP_GRO
	// message (CmsgSpace(4)) with room to spare.
	groOOBSize = 64
)

// groReader reads a UDP socket with UDP_GRO on, in batches (recvmmsg) into
// its own buffers, and splits coalesced buffers into datagrams.
//
// Only the carrier's one reading goroutine calls ReadBatch, so the buffers
// and the pending state (what the last recvmmsg returned that has not been
// handed out yet) need no lock. Only the counters are read by others.
type groReader struct {
	batch *ipv4.PacketConn
	msgs  []ipv4.Message // groBuffers messages, each with its own buffer and OOB space
	// Each message reads into the slab in slabs (nil when none was free),
	// or else into fixed, the reader's own buffer.
	slabs []*rxSlab
	fixed [][]byte
	pool  slabPool
	cur   *rxSlab // msgs[next]'s slab while it is handed out, or nil

	// Pending: msgs[next:filled] hold data not yet handed out. The current
	// message, msgs[next], is handed out from off up to end in seg-byte
	// segments (seg 0: the rest is one datagram), all from from.
	filled, next int
	off, end     int
	seg          int
	from         netip.AddrPort

	// Counters for diagnostics and tests; only the reader writes them.
	reads     atomic.Uint64 // recvmmsg calls that returned data
	buffers   atomic.Uint64 // buffers those calls filled
	coalesced atomic.Uint64 // buffers that came with a UDP_GRO control message
	datagrams atomic.Uint64 // datagrams handed out
	dropped   atomic.Uint64 // datagrams dropped: too large for the caller's buffer, or truncated
}

// groStats is a snapshot of a groReader's counters.
type groStats struct {
	Reads, Buffers, Coalesced, Datagrams, Dropped uint64
}

// stats returns the reader's counters; any goroutine may call it.
func (r *groReader) stats() groStats {
	return groStats{
		Reads:     r.reads.Load(),
		Buffers:   r.buffers.Load(),
		Coalesced: r.coalesced.Load(),
		Datagrams: r.datagrams.Load(),
		Dropped:   r.dropped.Load(),
	}
}

// newGROReader turns on UDP_GRO on udp and returns a reader for it, or nil
// when the kernel refuses (too old, or not a UDP socket), leaving udp as it
// was.
func newGROReader(udp *net.UDPConn) *groReader {
	if err := enableGRO(udp); err != nil {
		return nil
	}
	r := &groReader{batch: newBatchReader(udp), msgs: make([]ipv4.Message, groBuffers), slabs: make([]*rxSlab, groBuffers), fixed: make([][]byte, groBuffers)}
	bufs := make([]byte, groBuffers*groBufSize)
	oob := make([]byte, groBuffers*groOOBSize)
	for i := range r.msgs {
		r.fixed[i] = bufs[i*groBufSize : (i+1)*groBufSize : (i+1)*groBufSize]
		r.msgs[i].Buffers = [][]byte{r.fixed[i]}
		r.msgs[i].OOB = oob[i*groOOBSize : (i+1)*groOOBSize : (i+1)*groOOBSize]
	}
	return r
}

// enableGRO sets UDP_GRO on udp.
func enableGRO(udp *net.UDPConn) error {
	rc, err := udp.SyscallConn()
	if err != nil {
		return fmt.Errorf("transport: enable UDP_GRO: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	}); err != nil {
		return fmt.Errorf("transport: enable UDP_GRO: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("transport: enable UDP_GRO: %w", serr)
	}
	return nil
}

// ReadBatch fills ds with datagrams: first those left over from the last
// call, without a system call, then, when none are left, from one recvmmsg,
// which blocks until something arrives. Datagrams come in the order they
// were received, as views into a slab (ds[i].payload, with a reference the
// caller must release) or copied into ds[i].Buf. One longer than its
// ds[i].Buf is dropped and counted, never truncated. It returns at least
// one datagram or an error.
func (r *groReader) ReadBatch(ds []Datagram) (int, error) {
	for {
		if r.next >= r.filled {
			r.arm()
			n, err := r.batch.ReadBatch(r.msgs, 0)
			if err != nil {
				return 0, err
			}
			r.filled, r.next = n, 0
			r.reads.Add(1)
			r.buffers.Add(uint64(n))
			r.begin()
		}
		if n := r.fill(ds); n > 0 {
			r.datagrams.Add(uint64(n))
			return n, nil
		}
	}
}

// arm gives every message that has none a free slab to read into, or its
// fixed buffer when none is free. A slab that got no datagram stays.
func (r *groReader) arm() {
	for i := range r.msgs {
		if r.slabs[i] != nil {
			continue
		}
		if s := r.pool.get(); s != nil {
			r.slabs[i] = s
			r.msgs[i].Buffers[0] = s.buf[:]
		} else {
			r.msgs[i].Buffers[0] = r.fixed[i]
		}
	}
}

// fill hands pending datagrams out into ds and returns how many it filled;
// 0 only when nothing was pending or everything pending was dropped.
func (r *groReader) fill(ds []Datagram) int {
	k := 0
	for k < len(ds) && r.next < r.filled {
		l := r.end - r.off
		if r.seg > 0 && r.seg < l {
			l = r.seg
		}
		d := &ds[k]
		b := r.msgs[r.next].Buffers[0][r.off : r.off+l : r.off+l]
		switch {
		case l > len(d.Buf):
			r.dropped.Add(1)
			if r.cur != nil {
				r.cur.release(1)
			}
		case r.cur != nil:
			d.slab, d.view, d.N = r.cur, b, l
			d.From = r.from
			k++
		default:
			d.slab, d.view = nil, nil
			d.N = copy(d.Buf, b)
			d.From = r.from
			k++
		}
		r.off += l
		if r.off >= r.end {
			r.next++
			r.begin()
		}
	}
	return k
}

// begin prepares msgs[next], if any, for handing out: its source, its
// segment size, and how much of it is whole datagrams. A buffer the kernel
// truncated (which 64 KiB buffers should never see) keeps only its whole
// segments; a truncated single datagram is dropped.
//
// A message read into a slab gives the slab one reference per datagram in
// it (fill hands each out with its datagram, or releases it with a drop)
// and leaves its place for arm to fill with a fresh slab.
func (r *groReader) begin() {
	r.cur = nil
	if r.next >= r.filled {
		return
	}
	m := &r.msgs[r.next]
	r.off, r.end = 0, m.N
	r.from = messageSource(m)
	r.seg = groSegmentSize(m.OOB[:m.NN])
	if r.seg > 0 {
		r.coalesced.Add(1)
	}
	if r.seg >= m.N {
		r.seg = 0 // one datagram
	}
	if m.Flags&unix.MSG_TRUNC != 0 {
		r.dropped.Add(1)
		if r.seg == 0 {
			r.next++ // nothing whole in it (its slab, if any, stays for the next read)
			r.begin()
			return
		}
		r.end = m.N - m.N%r.seg
	}
	if s := r.slabs[r.next]; s != nil && r.end > 0 {
		n := 1
		if r.seg > 0 {
			n = (r.end + r.seg - 1) / r.seg
		}
		s.refs.Store(int32(n))
		r.cur = s
		r.slabs[r.next] = nil
	}
}
