package transport

import "time"

// Noticing that the machine slept. A laptop that wakes up may be on
// another network, or on the same one behind a NAT that forgot its
// mappings; the kernel tells of neither when the addresses stay the same.
// The wall clock runs on through a suspend while Go's monotonic clock
// (CLOCK_MONOTONIC on Linux, the same idea elsewhere) stands still, so a
// wall clock that advanced much further than the monotonic one between two
// looks means the machine slept, and the Socket treats it as a network
// change.

// wakeSkew is how much further the wall clock must have moved than the
// monotonic clock: more than an NTP step usually corrects, less than any
// sleep worth noticing.
const wakeSkew = 5 * time.Second

// wakeWatch compares the two clocks between looks.
type wakeWatch struct {
	last time.Time // with its monotonic reading
}

func newWakeWatch(now time.Time) *wakeWatch { return &wakeWatch{last: now} }

// woke reports whether the machine slept since the previous look at now
// (which must carry a monotonic reading, as time.Now does).
func (w *wakeWatch) woke(now time.Time) bool {
	mono := now.Sub(w.last)                   // monotonic: stops during a suspend
	wall := now.Round(0).Sub(w.last.Round(0)) // wall clock: runs on
	w.last = now
	return sleptBetween(wall, mono)
}

// sleptBetween reports whether wall-clock time wall passed while only mono
// passed on the monotonic clock.
func sleptBetween(wall, mono time.Duration) bool { return wall-mono > wakeSkew }
