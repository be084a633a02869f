package transport

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// awaitInBackground runs b.await and returns a channel closed when it
// returns, once the waiter has said it waits.
func awaitInBackground(t *testing.T, b *backlog, closed, wake <-chan struct{}) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.await(closed, wake)
	}()
	for !b.waiting.Load() {
		select {
		case <-done:
			t.Fatal("await returned with a full queue")
		default:
			runtime.Gosched()
		}
	}
	return done
}

func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("await did not return after %s", what)
	}
}

func TestBacklogWaitsForARunLoopTurn(t *testing.T) {
	b := newBacklog(nil)
	b.hand(backlogMax - 1)
	if got := b.room(); got != 1 {
		t.Fatalf("room = %d with %d handed over, want 1", got, backlogMax-1)
	}
	b.await(nil, nil) // room: returns at once
	b.hand(1)
	done := awaitInBackground(t, b, nil, nil)
	// quic-go takes packets one by one; the reader is woken only once a
	// run-loop turn's worth is gone, not for each.
	for range backlogMax - backlogResume - 1 {
		b.took()
	}
	if len(b.wake) != 0 {
		t.Fatalf("reader woken with %d packets still queued, want a wake-up at %d", backlogMax-(backlogMax-backlogResume-1), backlogResume)
	}
	b.took()
	waitDone(t, done, "quic-go took a turn's worth")
	if got := b.room(); got != backlogMax-backlogResume {
		t.Errorf("room = %d after the turn, want %d", got, backlogMax-backlogResume)
	}
	if b.waits.Load() != 1 || b.stalls.Load() != 0 {
		t.Errorf("waits = %d, stalls = %d, want 1 and 0", b.waits.Load(), b.stalls.Load())
	}
}

func TestBacklogWaitEndsOnCloseAndDeadline(t *testing.T) {
	for _, which := range []string{"close", "deadline change"} {
		b := newBacklog(nil)
		b.hand(backlogMax)
		closed, wake := make(chan struct{}), make(chan struct{})
		done := awaitInBackground(t, b, closed, wake)
		if which == "close" {
			close(closed)
		} else {
			close(wake)
		}
		waitDone(t, done, which)
	}
}

func TestBacklogStartsAfreshWhenQUICTakesNothing(t *testing.T) {
	// Packets quic-go's transport dropped before any connection saw them
	// never come back as events: a full count with nothing taken must not
	// stop the reader for good.
	b := newBacklog(nil)
	b.hand(backlogMax)
	done := awaitInBackground(t, b, nil, nil)
	waitDone(t, done, "a stall")
	if b.stalls.Load() != 1 {
		t.Errorf("stalls = %d, want 1", b.stalls.Load())
	}
	if got := b.room(); got != backlogMax {
		t.Errorf("room = %d after the stall, want %d (counted afresh)", got, backlogMax)
	}
}

// countingTrace is a qlog trace that counts the events it records.
type countingTrace struct{ events, closes atomic.Int64 }

func (c *countingTrace) AddProducer() qlogwriter.Recorder { return countingRecorder{c} }

type countingRecorder struct{ c *countingTrace }

func (r countingRecorder) RecordEvent(qlogwriter.Event) { r.c.events.Add(1) }
func (r countingRecorder) Close() error                 { r.c.closes.Add(1); return nil }

func TestBacklogRecorderCountsWhatLeavesQUICsQueue(t *testing.T) {
	b := newBacklog(nil)
	inner := &countingTrace{}
	r := b.trace(inner).AddProducer()
	b.hand(10)
	r.RecordEvent(qlog.PacketReceived{})
	r.RecordEvent(qlog.PacketDropped{Trigger: qlog.PacketDropDuplicate})
	r.RecordEvent(qlog.PacketDropped{Trigger: qlog.PacketDropDOSPrevention})
	r.RecordEvent(qlog.PacketSent{}) // nothing left the queue
	if got := b.room(); got != backlogMax-7 {
		t.Errorf("room = %d, want %d: three of ten packets left the queue", got, backlogMax-7)
	}
	if got := b.dropped.Load(); got != 1 {
		t.Errorf("dropped = %d, want 1 (dos_prevention only)", got)
	}
	if got := inner.events.Load(); got != 4 {
		t.Errorf("the configured trace got %d events, want all 4", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if inner.closes.Load() != 1 || b.room() != backlogMax {
		t.Errorf("after Close: inner closes = %d, room = %d; want 1 and %d", inner.closes.Load(), b.room(), backlogMax)
	}
	// Without a configured trace, events are counted all the same.
	b2 := newBacklog(nil)
	b2.hand(1)
	b2.trace(nil).AddProducer().RecordEvent(qlog.PacketReceived{})
	if b2.room() != backlogMax {
		t.Errorf("room = %d without an inner trace, want %d", b2.room(), backlogMax)
	}
}

// slowRunLoop is a qlog trace whose recorder, called on quic-go's run
// loop, sleeps a millisecond every 64 packets processed: the run loop of a
// busy machine, whose thread is off the core now and then.
type slowRunLoop struct{ n atomic.Int64 }

func (s *slowRunLoop) AddProducer() qlogwriter.Recorder { return s }
func (s *slowRunLoop) Close() error                     { return nil }
func (s *slowRunLoop) RecordEvent(ev qlogwriter.Event) {
	if _, ok := ev.(qlog.PacketReceived); ok && s.n.Add(1)%64 == 0 {
		time.Sleep(time.Millisecond)
	}
}

// slowDialerPair connects a dialer whose quic-go run loop is slowed
// (slowRunLoop) to an ordinary acceptor on loopback.
func slowDialerPair(t *testing.T) (dialer, acceptor *Conn, slow *slowRunLoop) {
	t.Helper()
	slow = &slowRunLoop{}
	cfg := fastConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.QUIC = &quic.Config{
		MaxIdleTimeout:                 cfg.IdleTimeout,
		InitialStreamReceiveWindow:     8 << 20,
		InitialConnectionReceiveWindow: 12 << 20,
		Tracer: func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
			return slow
		},
	}
	a, err := NewSocket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b := newLoopbackSocket(t)
	dialer, acceptor = connectPair(t, a, b, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{b.LocalAddr()})
	return dialer, acceptor, slow
}

// checkNoQUICDrops fails t if the dialer's quic-go dropped packets from a
// full queue, or if mustWait and its reader never had to wait (then the
// test proved nothing).
func checkNoQUICDrops(t *testing.T, dialer, acceptor *Conn, slow *slowRunLoop, mustWait bool) Stats {
	t.Helper()
	st := dialer.Stats()
	t.Logf("dialer: %d QUIC packets received, %d waits, %d stalls, %d dropped by quic-go, %d by ferry's queue; the sender declared %d lost",
		st.QUICPacketsReceived, st.QUICQueueWaits, st.QUICQueueStalls, st.QUICQueueDrops, st.QueueDrops, acceptor.Stats().QUICPacketsLost)
	if slow.n.Load() == 0 {
		t.Fatal("the configured tracer saw no packets: the backlog does not pass quic-go's events on")
	}
	if st.QUICQueueDrops != 0 {
		t.Errorf("quic-go dropped %d packets from a full queue, want 0", st.QUICQueueDrops)
	}
	if mustWait && st.QUICQueueWaits == 0 {
		t.Error("the reader never waited for quic-go: the run loop was not slowed enough to test the backlog")
	}
	return st
}

func TestBacklogKeepsQUICFromDropping(t *testing.T) {
	// quic-go's reader outpaces a run loop that stalls, and quic-go drops
	// what does not fit its 256-packet queue: a loss to the sender on a
	// path that lost nothing. The dialer's vconn holds packets back
	// instead (in ferry's queue and the socket buffer).
	dialer, acceptor, slow := slowDialerPair(t)
	roundTrip(t, acceptor, dialer, 32<<20)
	checkNoQUICDrops(t, dialer, acceptor, slow, true)
}

func TestBacklogIgnoresPacketsForOtherIDs(t *testing.T) {
	// Someone who sees the dialer's packets (and so its router tag) and
	// can inject some floods it with QUIC packets for IDs the connection
	// never issued. The router hands them to quic-go, which drops them
	// before its connection sees them: were they counted, the reader would
	// wait for a queue that holds nothing (a stall) every backlogMax of
	// them.
	dialer, acceptor, slow := slowDialerPair(t)
	flooder, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	to := net.UDPAddrFromAddrPort(dialer.ep.s.LocalAddr())
	ctx, cancel := context.WithCancel(context.Background())
	flooded := make(chan int)
	go func() {
		n := 0
		defer func() { flooded <- n }()
		p := make([]byte, 1200)
		p[0] = 0x40 // short header
		binary.BigEndian.PutUint32(p[1:5], uint32(dialer.ep.tag))
		for ; n < 200000 && ctx.Err() == nil; n++ {
			_, _ = rand.Read(p[5:9])
			if _, err := flooder.WriteToUDP(p, to); err != nil {
				return
			}
			if n%64 == 0 {
				runtime.Gosched() // leave the transfer room to run
			}
		}
	}()
	roundTrip(t, acceptor, dialer, 32<<20)
	cancel()
	n := <-flooded
	st := checkNoQUICDrops(t, dialer, acceptor, slow, false)
	t.Logf("%d packets for unknown IDs sent during the transfer", n)
	if n < backlogMax {
		t.Fatalf("only %d flood packets sent, fewer than one queue's worth", n)
	}
	if st.QUICQueueStalls != 0 {
		t.Errorf("the reader stalled %d times waiting for packets quic-go never queued", st.QUICQueueStalls)
	}
}
