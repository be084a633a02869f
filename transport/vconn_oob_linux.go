package transport

import (
	"net"
	"syscall"

	"golang.org/x/net/ipv4"
)

// quicPacketConn returns the net.PacketConn an endpoint's quic.Transport
// runs over: on Linux, with a real UDP socket (raw non-nil), the vconn plus
// quic-go's OOB-capable interface, so quic-go keeps batch reads and GSO;
// otherwise the plain vconn.
func quicPacketConn(vc *vconn, raw syscall.RawConn) net.PacketConn {
	if raw == nil {
		return vc
	}
	return &oobVconn{vconn: vc, raw: raw}
}

// oobVconn is a vconn that also offers quic-go's OOB-capable interface, so
// quic-go reads in batches and hands whole GSO batches to WriteMsgUDP. It is
// used on Linux when the Socket's carriers are real UDP sockets.
type oobVconn struct {
	*vconn
	raw syscall.RawConn // the newest real socket when the connection was made, for quic-go's capability checks
}

// SyscallConn returns the newest real socket when the connection was made,
// on which quic-go checks buffer sizes, sets DF and asks whether GSO is
// available (once, when the connection's transport is made).
func (v *oobVconn) SyscallConn() (syscall.RawConn, error) { return v.raw, nil }

// ReadBatch fills ms with queued packets: it blocks for the first and takes
// whatever else is already waiting.
func (v *oobVconn) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	p, err := v.next()
	if err != nil {
		return 0, err
	}
	n := 0
	limit := min(len(ms), max(1, v.backlog.room()))
	from := v.peerAddr()
	// Buffers go back to the pool together, and a slab's references in
	// one release per run of its datagrams (they come in order).
	var done [readBatchLen]*pktBuf
	k := 0
	var run *rxSlab
	var runN int32
read:
	for {
		m := &ms[n]
		m.N = copy(m.Buffers[0], p.b)
		m.NN, m.Flags, m.Addr = 0, 0, from
		v.backlog.hand(p.b)
		switch {
		case p.slab != nil:
			if p.slab != run {
				if run != nil {
					run.release(runN)
				}
				run, runN = p.slab, 0
			}
			runN++
		case p.pb != nil:
			if k == len(done) {
				v.pool.putAll(done[:k])
				k = 0
			}
			done[k] = p.pb
			k++
		}
		n++
		if n == limit {
			break
		}
		select {
		case p = <-v.queue:
		default:
			break read
		}
	}
	if run != nil {
		run.release(runN)
	}
	v.pool.putAll(done[:k])
	return n, nil
}

// ReadMsgUDP reads one queued packet, with no control messages.
func (v *oobVconn) ReadMsgUDP(b, _ []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, from, err := v.ReadFrom(b)
	addr, _ = from.(*net.UDPAddr)
	return n, 0, 0, addr, err
}

// WriteMsgUDP sends a packet or a GSO batch on the active path; of the
// control messages only the segment size is kept (ECN marks are dropped).
func (v *oobVconn) WriteMsgUDP(b, oob []byte, _ *net.UDPAddr) (n, oobn int, err error) {
	v.backlog.poke()
	if err := v.ep.send(b, segmentSize(oob)); err != nil {
		return 0, 0, err
	}
	return len(b), len(oob), nil
}
