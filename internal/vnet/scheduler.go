package vnet

import (
	"net/netip"
	"time"
)

// maxBatch bounds the packets the scheduler delivers per lock acquisition.
const maxBatch = 256

// scheduler holds delayed packets in a heap ordered by delivery time, then
// by send order, and delivers them from one goroutine. It is part of a
// Network and guarded by the Network's mutex.
type scheduler struct {
	heap  []item
	seq   uint64
	flows map[flowKey]flowState // flows with ordered packets in the heap

	started bool
	wake    chan struct{} // a new earliest item was pushed
	done    chan struct{} // closed by Network.Close
	exited  chan struct{} // closed when the goroutine returns
}

type item struct {
	at      time.Duration // delivery time, relative to Network.start
	seq     uint64
	ordered bool // counted in flows; false for reordered packets
	p       packet
}

// flowKey identifies a flow by its wire addresses.
type flowKey struct{ src, dst netip.AddrPort }

type flowState struct {
	last    time.Duration // delivery time of the flow's latest ordered packet
	pending int           // ordered packets of the flow in the heap
}

// scheduleLocked decides when p is delivered. It returns true if p must be
// delivered now, or schedules it and returns false. Ordered packets of a
// flow are never delivered before earlier ordered packets of the same flow,
// so jitter and changes of delay do not reorder them.
func (s *scheduler) scheduleLocked(n *Network, p *packet, now time.Duration, imp impairment) bool {
	delay := imp.delay
	if imp.jitter > 0 {
		delay += time.Duration(n.rng.Int64N(int64(imp.jitter)))
	}
	if imp.reorder > 0 && n.rng.Float64() < imp.reorder {
		s.pushLocked(n, item{at: now + delay + 2*imp.delay + time.Millisecond, p: *p})
		return false
	}
	key := flowKey{p.src, p.dst}
	fs, busy := s.flows[key]
	if delay <= 0 && !busy {
		return true
	}
	at := max(now+delay, fs.last)
	if s.flows == nil {
		s.flows = make(map[flowKey]flowState)
	}
	s.flows[key] = flowState{last: at, pending: fs.pending + 1}
	s.pushLocked(n, item{at: at, ordered: true, p: *p})
	return false
}

// pushLocked adds it to the heap, starting the goroutine if needed and waking
// it if it is the new earliest item.
func (s *scheduler) pushLocked(n *Network, it item) {
	s.seq++
	it.seq = s.seq
	s.heap = append(s.heap, it)
	s.up(len(s.heap) - 1)
	if !s.started {
		s.started = true
		s.wake = make(chan struct{}, 1)
		s.done = make(chan struct{})
		s.exited = make(chan struct{})
		go n.runScheduler()
		return
	}
	if s.heap[0].seq == it.seq {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// popLocked removes and returns the earliest item.
func (s *scheduler) popLocked() item {
	it := s.heap[0]
	last := len(s.heap) - 1
	s.heap[0] = s.heap[last]
	s.heap[last] = item{}
	s.heap = s.heap[:last]
	if last > 0 {
		s.down(0)
	}
	if it.ordered {
		key := flowKey{it.p.src, it.p.dst}
		if fs := s.flows[key]; fs.pending <= 1 {
			delete(s.flows, key)
		} else {
			fs.pending--
			s.flows[key] = fs
		}
	}
	return it
}

// stopLocked discards all packets and tells the goroutine to stop. It
// returns a channel closed when the goroutine has returned, or nil if it
// never started.
func (s *scheduler) stopLocked() <-chan struct{} {
	clear(s.heap)
	s.heap = nil
	s.flows = nil
	if !s.started {
		return nil
	}
	close(s.done)
	return s.exited
}

func (s *scheduler) less(i, j int) bool {
	a, b := &s.heap[i], &s.heap[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (s *scheduler) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !s.less(j, i) {
			break
		}
		s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
		j = i
	}
}

func (s *scheduler) down(i int) {
	n := len(s.heap)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if r := j + 1; r < n && s.less(r, j) {
			j = r
		}
		if !s.less(j, i) {
			return
		}
		s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
		i = j
	}
}

// runScheduler delivers delayed packets when they are due, until Close.
func (n *Network) runScheduler() {
	s := &n.sched
	n.mu.Lock()
	wake, done, exited := s.wake, s.done, s.exited
	n.mu.Unlock()
	defer close(exited)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var infos []PacketInfo
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return
		}
		now := n.now()
		taps := n.taps
		infos = infos[:0]
		for k := 0; k < maxBatch && len(s.heap) > 0 && s.heap[0].at <= now; k++ {
			it := s.popLocked()
			info := n.deliverLocked(&it.p, now)
			if len(taps) > 0 {
				infos = append(infos, info)
			}
		}
		wait, more := time.Duration(-1), false
		if len(s.heap) > 0 {
			if wait = s.heap[0].at - now; wait <= 0 {
				more = true
			}
		}
		n.mu.Unlock()

		for _, info := range infos {
			callTaps(taps, info)
		}
		if more {
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-wake:
		case <-timer.C:
		case <-done:
			return
		}
		timer.Stop()
	}
}
