package transport

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Every endpoint gets its own quic.Transport over its own vconn, so the
// addresses quic-go sees can be the same fixed values for all of them. They
// are IPv4 (so quic-go builds IPv4 ECN control messages, which the kernel
// accepts for IPv4 and ignores for IPv6 destinations) from 240.0.0.0/4, which
// is reserved and never routed: nothing is ever sent to them.
var (
	virtualPeerAddr  = &net.UDPAddr{IP: net.IPv4(240, 0, 0, 1).To4(), Port: 1}
	virtualLocalAddr = &net.UDPAddr{IP: net.IPv4(240, 0, 0, 2).To4(), Port: 1}
)

// virtualPeerAddrFor is the virtual address under which the acceptor's
// quic-go sees the peer on ferry's path number epoch: virtualPeerAddr's IP
// with a port of its own. See vconn.newPath.
func virtualPeerAddrFor(epoch uint32) *net.UDPAddr {
	return &net.UDPAddr{IP: virtualPeerAddr.IP, Port: 1 + int(epoch%65535)}
}

// pktBufSize bounds received datagrams; QUIC packets here are at most 1452 bytes.
const pktBufSize = 2048

// pktBuf is a pooled receive buffer, handed from a carrier's reader to an
// endpoint's queue without copying (in an rxPkt).
type pktBuf struct {
	b [pktBufSize]byte
}

// pktPool recycles receive buffers across all carriers of a Socket.
//
// Buffers travel one way: a carrier's reader takes them, quic-go's reader
// (through a vconn) gives them back, on other goroutines and usually other
// cores. One sync.Pool round trip per datagram cost the receiver about 5 %
// of its CPU (issue 15: cache lines bouncing between the two cores), so
// buffers also move in batches through a short free list under one lock
// per batch (putAll, getAll); the sync.Pool takes what the list cannot hold.
type pktPool struct {
	p    sync.Pool
	mu   sync.Mutex
	free []*pktBuf // at most pktFreeMax
}

// pktFreeMax bounds the free list: a few batches' worth.
const pktFreeMax = 1024

func (p *pktPool) get() *pktBuf {
	if v, _ := p.p.Get().(*pktBuf); v != nil {
		return v
	}
	return new(pktBuf)
}

func (p *pktPool) put(b *pktBuf) { p.p.Put(b) }

// putAll gives back every buffer in bs, under one lock.
func (p *pktPool) putAll(bs []*pktBuf) {
	p.mu.Lock()
	n := min(len(bs), pktFreeMax-len(p.free))
	p.free = append(p.free, bs[:n]...)
	p.mu.Unlock()
	for _, b := range bs[n:] {
		p.p.Put(b)
	}
}

// getAll fills bs with buffers, from the free list under one lock first.
func (p *pktPool) getAll(bs []*pktBuf) {
	p.mu.Lock()
	n := min(len(bs), len(p.free))
	copy(bs, p.free[len(p.free)-n:])
	clear(p.free[len(p.free)-n:])
	p.free = p.free[:len(p.free)-n]
	p.mu.Unlock()
	for i := n; i < len(bs); i++ {
		bs[i] = p.get()
	}
}

// vconnQueueLen is how many QUIC packets may wait for quic-go per endpoint;
// beyond that they are dropped, as a full socket buffer would.
const vconnQueueLen = 4096

// vconn is the net.PacketConn one endpoint's quic.Transport reads and writes.
// Reads come from the endpoint's queue, filled by the carriers' readers with
// the peer's QUIC packets under the fixed virtual address; writes go to the
// endpoint's active path. quic-go never sees a real address, so it never sees
// one change.
//
// On the acceptor's side (the sender of a transfer) quic-go does learn of
// a change of path, on purpose: its congestion controller and RTT estimate
// belong to the old path, and a window sized for a 10 ms LAN sends far too
// little on a 100 ms hotspot, for tens of seconds, while one sized for a
// fat path overruns a thin one. So each path ferry moves to presents the
// peer under a new virtual address (newPath); quic-go's server side takes
// that for the client's migration, validates it with PATH_CHALLENGE (over
// the same ferry path, already validated by ferry) and starts its
// congestion control and RTT afresh, as RFC 9000 section 9.4 asks. The
// dialer's quic-go, a client, cannot follow a server's migration and
// keeps seeing one address; it sends little but acknowledgements.
type vconn struct {
	ep     *endpoint
	pool   *pktPool
	queue  chan rxPkt
	closed chan struct{}
	// backlog paces reads to what quic-go's connection can queue.
	backlog *backlog
	once    sync.Once

	peer     atomic.Pointer[net.UDPAddr] // the address packets are read from
	epoch    atomic.Uint32               // paths presented by newPath
	migrates atomic.Bool                 // newPath presents new paths (set once the acceptor's handshake is done)

	deadline atomic.Int64 // read deadline in UnixNano, 0 = none
	mu       sync.Mutex
	wake     chan struct{} // closed when the read deadline changes
}

func newVconn(ep *endpoint, pool *pktPool) *vconn {
	v := &vconn{ep: ep, pool: pool, queue: make(chan rxPkt, vconnQueueLen), closed: make(chan struct{}), wake: make(chan struct{}), backlog: newBacklog(ep.cids)}
	v.peer.Store(virtualPeerAddr)
	return v
}

// newPath presents the peer under a new virtual address from now on, once
// migrates is set (a migration during the handshake is a protocol error):
// every
// packet read after it, whichever ferry path it came by, comes from there.
// Only the newest path has an address, so packets still in flight on an
// old one never make quic-go validate it and move back.
func (v *vconn) newPath() {
	if v.migrates.Load() {
		v.peer.Store(virtualPeerAddrFor(v.epoch.Add(1)))
	}
}

// peerAddr is the address packets are read from now.
func (v *vconn) peerAddr() *net.UDPAddr { return v.peer.Load() }

// deliver queues a packet for quic-go, taking ownership of p.
func (v *vconn) deliver(p rxPkt) {
	select {
	case v.queue <- p:
		if v.isClosed() {
			v.drain() // Close may have drained before p came
		}
	default:
		v.ep.counters.queueDrops.Add(1)
		v.release(p)
	}
}

// release gives p's buffer back to the pool, or its reference to its slab.
func (v *vconn) release(p rxPkt) {
	if p.slab != nil {
		p.slab.release(1)
	} else if p.pb != nil {
		v.pool.put(p.pb)
	}
}

// drain releases every packet in the queue, so a closed vconn holds no
// slab out of its reader's pool.
func (v *vconn) drain() {
	for {
		select {
		case p := <-v.queue:
			v.release(p)
		default:
			return
		}
	}
}

// isClosed reports whether Close was called.
func (v *vconn) isClosed() bool {
	select {
	case <-v.closed:
		return true
	default:
		return false
	}
}

func (v *vconn) next() (rxPkt, error) {
	if v.backlog.room() <= 0 {
		v.mu.Lock()
		wake := v.wake
		v.mu.Unlock()
		v.backlog.await(v.closed, wake)
	}
	for {
		if err := v.checkDeadline(); err != nil {
			return rxPkt{}, err
		}
		select {
		case p := <-v.queue:
			return p, nil
		default:
		}
		if p, err, again := v.wait(); !again {
			return p, err
		}
	}
}

// wait blocks for a packet, close, the read deadline or a deadline change
// (again: check the deadline and wait anew).
func (v *vconn) wait() (p rxPkt, err error, again bool) {
	v.mu.Lock()
	wake := v.wake
	v.mu.Unlock()
	var timeout <-chan time.Time
	if dl := v.deadline.Load(); dl != 0 {
		t := time.NewTimer(time.Until(time.Unix(0, dl)))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-v.queue:
		return p, nil, false
	case <-v.closed:
		return rxPkt{}, net.ErrClosed, false
	case <-wake:
	case <-timeout:
	}
	return rxPkt{}, nil, true
}

func (v *vconn) checkDeadline() error {
	if v.isClosed() {
		return net.ErrClosed
	}
	if dl := v.deadline.Load(); dl != 0 && time.Now().UnixNano() >= dl {
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (v *vconn) ReadFrom(b []byte) (int, net.Addr, error) {
	p, err := v.next()
	if err != nil {
		return 0, nil, err
	}
	n := copy(b, p.b)
	v.release(p)
	v.backlog.hand(b[:n])
	return n, v.peerAddr(), nil
}

func (v *vconn) WriteTo(b []byte, _ net.Addr) (int, error) {
	v.backlog.poke()
	if err := v.ep.send(b, 0); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (v *vconn) Close() error {
	v.once.Do(func() { close(v.closed) })
	v.drain()
	return nil
}

func (v *vconn) LocalAddr() net.Addr { return virtualLocalAddr }

func (v *vconn) SetDeadline(t time.Time) error { return v.SetReadDeadline(t) }

func (v *vconn) SetReadDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	v.deadline.Store(ns)
	v.mu.Lock()
	close(v.wake)
	v.wake = make(chan struct{})
	v.mu.Unlock()
	return nil
}

func (v *vconn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer is accepted and ignored: the carriers size their own sockets.
func (v *vconn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer is accepted and ignored, like SetReadBuffer.
func (v *vconn) SetWriteBuffer(int) error { return nil }
