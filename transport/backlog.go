package transport

import (
	"sync/atomic"
	"time"
)

// quic-go keeps at most 256 received packets per connection for its run
// loop (protocol.MaxConnUnprocessedPackets, a constant) and drops the
// rest. Its reader takes packets from the vconn about four times faster
// than the run loop processes them, so whenever the run loop's thread is
// off the core for a millisecond or two (two processes on two cores, as
// on any laptop sending to itself or a busy machine) the queue overflows
// and quic-go throws away packets ferry already carried: on loopback
// 84-1042 per GiB, each one a loss to the sender's congestion control.
//
// The backlog keeps the vconn from handing over more than quic-go can
// queue. quic-go's run loop adds each packet's size to its connection's
// BytesReceived (ConnectionStats) as it takes the packet off the queue,
// in the order the vconn handed them over; the vconn remembers where in
// that running sum each packet it handed ends, so it knows how many
// still wait. While backlogMax do, the vconn's reader waits, and packets
// stay in ferry's own queue and the kernel's socket buffer, which are
// sized for bursts. quic-go sends an acknowledgement after each turn of
// its run loop (up to 32 packets), through the vconn: that write wakes
// the reader, which a poll every backlogPoll backs up.
//
// Only packets addressed to one of the connection's own IDs count:
// quic-go's transport drops any other before a connection sees it, and a
// flood of such packets from someone who can see and inject but not drop
// (an open Wi-Fi) would otherwise leave the count high and the reader
// waiting. What can still make the count drift (packets for an ID quic-go
// retired a while ago; packets queued while the handshake ran, before
// the count starts) is small and rare, and a count too high is bounded:
// a wait in which quic-go takes nothing for backlogStall takes quic-go's
// queue for empty.
//
// The backlog's reading side (room, hand, await) belongs to the one
// goroutine that reads the vconn (quic-go's transport's); poke, attach
// and the counters are safe from any.
type backlog struct {
	cids *cidGenerator // the IDs of the connection, whose packets count

	// taken returns quic-go's BytesReceived: the bytes of every packet
	// its connection took off the queue. Nil until the handshake is done.
	taken atomic.Pointer[func() uint64]

	// The reader's own state.
	started bool                // counting since the connection came
	origin  uint64              // taken() when counting started, moved on by resync: taken()-origin is in handed's terms
	handed  uint64              // bytes handed since counting started
	ends    [backlogRing]uint64 // handed at the end of each packet still queued, oldest at tail
	head    uint64              // ends index of the next packet handed
	tail    uint64              // ends index of the oldest packet still queued
	timer   *time.Timer

	waiting atomic.Bool   // the reader waits for room
	wake    chan struct{} // the reader's wake-up, capacity 1

	waits  atomic.Uint64 // times the reader waited for room
	stalls atomic.Uint64 // waits that ran into backlogStall
}

const (
	// backlogMax is how many packets may wait in quic-go's queue; it
	// holds 256, and nothing but the vconn fills it.
	backlogMax = 248
	// backlogRing holds the ends of the packets queued: backlogMax, and
	// the odd packet handed regardless (a deadline, a stall).
	backlogRing = 512
	// backlogPoll is how often a waiting reader looks again unwoken.
	backlogPoll = 2 * time.Millisecond
	// backlogStall bounds a wait in which quic-go takes nothing: long
	// enough that a run loop merely kept off the core by a busy machine
	// is waited for (going on would overflow its queue), short enough
	// that a count gone wrong costs a hiccup, not a transfer.
	backlogStall = 50 * time.Millisecond
)

func newBacklog(cids *cidGenerator) *backlog {
	return &backlog{cids: cids, wake: make(chan struct{}, 1)}
}

// attach starts the count once the connection exists: taken reports its
// BytesReceived.
func (b *backlog) attach(taken func() uint64) { b.taken.Store(&taken) }

// queued is how many of the packets handed since the count started
// quic-go's connection has not taken yet.
func (b *backlog) queued() int {
	p := b.taken.Load()
	if p == nil {
		return 0
	}
	t := (*p)()
	if !b.started {
		b.started, b.origin = true, t
	}
	done := t - b.origin
	for b.tail != b.head && b.ends[b.tail%backlogRing] <= done {
		b.tail++
	}
	return int(b.head - b.tail)
}

// room is how many more packets quic-go's queue takes now (0 when it
// holds backlogMax).
func (b *backlog) room() int { return max(0, backlogMax-b.queued()) }

// hand records packet p handed to quic-go, if it counts: once the count
// has started, and only for the connection's own IDs (cidGenerator.issued).
func (b *backlog) hand(p []byte) {
	if !b.started || !b.cids.issued(p) {
		return
	}
	if b.head-b.tail == backlogRing {
		b.tail++ // forget the oldest: taken for taken
	}
	b.handed += uint64(len(p))
	b.ends[b.head%backlogRing] = b.handed
	b.head++
}

// poke wakes a waiting reader: quic-go wrote, so its run loop took a turn.
func (b *backlog) poke() {
	if b.waiting.Load() {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// await returns once quic-go's queue has room, closed or wake is closed
// (the vconn's close, a change of its read deadline), or quic-go took
// nothing for backlogStall (then the count starts afresh).
func (b *backlog) await(closed, wake <-chan struct{}) {
	if b.room() > 0 {
		return
	}
	b.waits.Add(1)
	if b.timer == nil {
		b.timer = time.NewTimer(backlogPoll)
	}
	last, since := b.tail, time.Now()
	for {
		b.waiting.Store(true)
		if b.room() > 0 {
			b.waiting.Store(false)
			return
		}
		b.timer.Reset(backlogPoll)
		select {
		case <-b.wake:
		case <-closed:
		case <-wake:
		case <-b.timer.C:
		}
		b.timer.Stop()
		b.waiting.Store(false)
		if b.room() > 0 || isClosed(closed) || isClosed(wake) {
			return
		}
		if b.tail != last {
			last, since = b.tail, time.Now()
		} else if time.Since(since) >= backlogStall {
			// Nothing taken: quic-go's queue is empty (the count
			// drifted), or its run loop is gone; either way, count
			// afresh.
			b.stalls.Add(1)
			b.resync()
			return
		}
	}
}

// resync takes quic-go's queue for empty: every packet handed, taken.
func (b *backlog) resync() {
	if p := b.taken.Load(); p != nil {
		b.origin = (*p)() - b.handed
	}
	b.tail = b.head
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
