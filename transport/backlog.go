package transport

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// quic-go keeps at most 256 received packets per connection for its run
// loop (protocol.MaxConnUnprocessedPackets, a constant) and drops the
// rest. Its reader takes packets from the vconn about four times faster
// than the run loop processes them, so whenever the run loop's thread is
// off the core for a millisecond or two (two processes on two cores, as
// on any laptop sending to itself or a busy machine) the queue overflows
// and quic-go throws away packets ferry already carried: on loopback
// 84-819 per GiB, each one a loss to the sender's congestion control.
//
// The backlog keeps the vconn from handing over more than quic-go can
// queue. It counts the packets the vconn handed quic-go and the packets
// quic-go's connection took off its queue, which quic-go reports through
// the qlog recorder it is given (every packet it processes or drops
// yields a PacketReceived or PacketDropped event). While backlogMax are
// waiting, the vconn's reader waits, and packets stay in ferry's own
// queue and the kernel's socket buffer, which are sized for bursts; it
// resumes once the run loop has taken a turn's worth (backlogResume).
//
// Only packets addressed to one of the connection's own IDs count:
// quic-go's transport drops any other before a connection sees it, with
// no event, and a flood of such packets from someone who can see and
// inject but not drop (an open Wi-Fi) would otherwise leave the count
// high and the reader waiting. What can still make the count drift
// (packets for an ID quic-go retired a while ago, a connection's close,
// which discards its queue without events) is rare, so a wait is
// bounded: a run loop that takes nothing for backlogStall is taken to
// have an empty queue, and the count starts afresh.
type backlog struct {
	cids    *cidGenerator // the IDs of the connection, whose packets count
	handed  atomic.Uint64 // packets the vconn handed quic-go
	taken   atomic.Uint64 // packets quic-go's connection processed or dropped
	waiting atomic.Bool   // the reader waits for room
	wake    chan struct{} // the reader's wake-up, capacity 1

	// Only the reader's goroutine (quic-go's, one per transport) uses
	// the timer, for the bound on a wait.
	timer *time.Timer

	waits   atomic.Uint64 // times the reader waited for room
	stalls  atomic.Uint64 // waits that ran into backlogStall
	dropped atomic.Uint64 // packets quic-go dropped for want of room
}

const (
	// backlogMax is how many packets may wait in quic-go's queue; it
	// holds 256, and nothing but the vconn fills it.
	backlogMax = 248
	// backlogResume is the backlog at which a waiting reader goes on: a
	// run-loop turn processes up to 32 packets before it sends.
	backlogResume = backlogMax - 32
	// backlogStall bounds a wait in which quic-go takes nothing.
	backlogStall = 20 * time.Millisecond
)

// paceForQUIC makes v hand quic-go no more than its queue holds, counted
// with the qlog events of qconf's connection: it sets v's backlog and
// wraps qconf's Tracer, which still gets every event.
func paceForQUIC(v *vconn, qconf *quic.Config, cids *cidGenerator) {
	b := newBacklog(cids)
	v.backlog = b
	inner := qconf.Tracer
	qconf.Tracer = func(ctx context.Context, isClient bool, id quic.ConnectionID) qlogwriter.Trace {
		var t qlogwriter.Trace
		if inner != nil {
			t = inner(ctx, isClient, id)
		}
		return b.trace(t)
	}
}

func newBacklog(cids *cidGenerator) *backlog {
	return &backlog{cids: cids, wake: make(chan struct{}, 1)}
}

// room is how many more packets quic-go's queue takes now (at most
// backlogMax, 0 or less when it is full).
func (b *backlog) room() int {
	return backlogMax - int(int64(b.handed.Load()-b.taken.Load()))
}

// counts reports whether handing packet p to quic-go adds to its
// connection's queue: whether p is addressed to one of the connection's
// IDs. quic-go drops other packets before any connection sees them, with
// no event that would take them off the count.
func (b *backlog) counts(p []byte) bool { return b.cids.issued(p) }

// hand records n packets handed to quic-go's connection.
func (b *backlog) hand(n int) { b.handed.Add(uint64(n)) }

// await returns once quic-go's queue has room, closed or wake is closed
// (the vconn's close, a change of its read deadline), or quic-go took
// nothing for backlogStall.
func (b *backlog) await(closed, wake <-chan struct{}) {
	if b.room() > 0 {
		return
	}
	b.waits.Add(1)
	for {
		b.waiting.Store(true)
		if b.room() > 0 {
			b.waiting.Store(false)
			return
		}
		taken := b.taken.Load()
		if b.timer == nil {
			b.timer = time.NewTimer(backlogStall)
		} else {
			b.timer.Reset(backlogStall)
		}
		select {
		case <-b.wake:
		case <-closed:
		case <-wake:
		case <-b.timer.C:
			if b.taken.Load() == taken {
				// Nothing taken: quic-go's queue is empty, or its run
				// loop is gone; either way, count afresh.
				b.stalls.Add(1)
				b.resync()
			}
		}
		b.timer.Stop()
		b.waiting.Store(false)
		if b.room() > 0 || isClosed(closed) || isClosed(wake) {
			return
		}
	}
}

// resync takes quic-go's queue for empty.
func (b *backlog) resync() { b.taken.Store(b.handed.Load()) }

// took records one packet taken off quic-go's queue and wakes a waiting
// reader once a run-loop turn's worth of room is free.
func (b *backlog) took() {
	t := b.taken.Add(1)
	if b.waiting.Load() && int64(b.handed.Load()-t) <= backlogResume {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// trace returns the qlog trace quic-go's Config.Tracer hands the
// connection: b's recorder, passing every event on to inner's (a
// configured Tracer, for qlog files or tests) when there is one.
func (b *backlog) trace(inner qlogwriter.Trace) qlogwriter.Trace {
	return backlogTrace{b: b, inner: inner}
}

type backlogTrace struct {
	b     *backlog
	inner qlogwriter.Trace // nil: none
}

func (t backlogTrace) AddProducer() qlogwriter.Recorder {
	r := &backlogRecorder{b: t.b}
	if t.inner != nil {
		r.inner = t.inner.AddProducer()
	}
	return r
}

// backlogRecorder counts the events that mean a packet left quic-go's
// queue. quic-go calls it on the connection's run loop.
type backlogRecorder struct {
	b     *backlog
	inner qlogwriter.Recorder // nil: none
}

func (r *backlogRecorder) RecordEvent(ev qlogwriter.Event) {
	switch e := ev.(type) {
	case qlog.PacketReceived:
		r.b.took()
	case qlog.PacketDropped:
		if e.Trigger == qlog.PacketDropDOSPrevention {
			// Its queue was full (or, in the handshake, the one for
			// packets it cannot decrypt yet).
			r.b.dropped.Add(1)
		}
		r.b.took()
	}
	if r.inner != nil {
		r.inner.RecordEvent(ev)
	}
}

// Close is called when the connection is done: its queue is gone, so
// the count starts afresh.
func (r *backlogRecorder) Close() error {
	r.b.resync()
	if r.inner != nil {
		return r.inner.Close()
	}
	return nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
