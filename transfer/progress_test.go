package transfer

import (
	"testing"
	"time"
)

// TestProgressRateAfterStall: a stall (a network change) shows as the rate
// falling, and once bytes flow again the displayed rate is the new rate
// at once, not a crawl up from the stall's near-zero.
func TestProgressRateAfterStall(t *testing.T) {
	var events []Event
	p := newProgress(func(e Event) { events = append(events, e) }, 1<<40, 0)
	now := time.Unix(1000, 0)
	p.last, p.began = now, now
	const perTick = 25 << 20 / 4 // 25 MiB/s
	step := func(bytes int64) Event {
		p.moved.Add(bytes)
		now = now.Add(progressInterval)
		p.tick(now)
		return events[len(events)-1]
	}
	for range 8 {
		step(perTick)
	}
	var during Event
	for range 12 { // a 3 s stall
		during = step(0)
	}
	if during.Rate > 0.5*perTick*4 {
		t.Fatalf("rate after a 3 s stall is %.0f B/s; a stall must show", during.Rate)
	}
	after := step(perTick)
	if want := float64(perTick * 4); after.Rate < 0.9*want {
		t.Fatalf("first rate after the stall %.0f B/s, want about %.0f", after.Rate, want)
	}
	// A healthy transfer's momentary dip is still smoothed.
	dip := step(perTick / 2)
	if dip.Rate < 0.9*float64(perTick*4) {
		t.Fatalf("one slow tick dropped the rate to %.0f B/s", dip.Rate)
	}
}
