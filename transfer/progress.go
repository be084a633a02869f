package transfer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// progressInterval is how often progress events are emitted; front ends
// coalesce further (the CLI's JSON to 4 per second, the GUI to 10).
const progressInterval = 250 * time.Millisecond

// stallTicks is how many progress ticks without a byte make a stall: half
// a second, longer than any gap of a healthy transfer's writes.
const stallTicks = 2

// progress counts bytes moved and emits EventProgress on a ticker, with a
// smoothed rate and an ETA. add is called from many goroutines.
type progress struct {
	emit    Sink
	total   int64
	skipped int64
	moved   atomic.Int64
	current atomic.Pointer[string]

	mu      sync.Mutex
	rate    float64
	last    time.Time
	lastVal int64
	began   time.Time
	stalled int // ticks in a row without a byte

	stopOnce sync.Once
	done     chan struct{}
	exited   chan struct{}
}

func newProgress(emit Sink, total, skipped int64) *progress {
	return &progress{emit: emit, total: total, skipped: skipped, done: make(chan struct{}), exited: make(chan struct{})}
}

// start runs the ticker goroutine; stop ends it.
func (p *progress) start(ctx context.Context) {
	now := time.Now()
	p.last, p.began = now, now
	go func() {
		defer close(p.exited)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.done:
				return
			case now := <-t.C:
				p.tick(now)
			}
		}
	}()
}

func (p *progress) add(n int64, path string) {
	p.moved.Add(n)
	if cur := p.current.Load(); cur == nil || *cur != path {
		p.current.Store(&path)
	}
}

// tick emits one progress event; the rate is an exponentially weighted
// average over about two seconds. A stall (the network changed, the peer
// is reconnecting) shows as the rate falling; when bytes flow again after
// one the average starts over from the new rate, so the display does not
// crawl up from the stall's near-zero for seconds after the transfer has
// resumed at full speed.
func (p *progress) tick(now time.Time) {
	p.mu.Lock()
	moved := p.moved.Load()
	dt := now.Sub(p.last).Seconds()
	if dt > 0 {
		inst := float64(moved-p.lastVal) / dt
		resumed := inst > 0 && p.stalled >= stallTicks
		if inst == 0 {
			p.stalled++
		} else {
			p.stalled = 0
		}
		if p.rate == 0 || resumed {
			p.rate = inst
		} else {
			const alpha = 0.12
			p.rate += alpha * (inst - p.rate)
		}
	}
	p.last, p.lastVal = now, moved
	rate := p.rate
	p.mu.Unlock()
	done := p.skipped + moved
	var eta time.Duration
	if rate > 0 && done < p.total {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second))
	}
	cur := ""
	if c := p.current.Load(); c != nil {
		cur = *c
	}
	p.emit(Event{Kind: EventProgress, Time: now, Bytes: done, Total: p.total, Rate: rate, ETA: eta, Current: cur})
}

// finish emits a last, complete progress event.
func (p *progress) finish() {
	p.stop()
	now := time.Now()
	avg := 0.0
	if el := now.Sub(p.began).Seconds(); el > 0 {
		avg = float64(p.moved.Load()) / el
	}
	p.emit(Event{Kind: EventProgress, Time: now, Bytes: p.skipped + p.moved.Load(), Total: p.total, Rate: avg})
}

func (p *progress) stop() {
	p.stopOnce.Do(func() { close(p.done) })
	<-p.exited
}

// safeSink serialises calls to a Sink and stamps events with the time; a
// nil Sink discards.
func safeSink(s Sink) Sink {
	if s == nil {
		return func(Event) {}
	}
	var mu sync.Mutex
	return func(e Event) {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		mu.Lock()
		defer mu.Unlock()
		s(e)
	}
}
