package transport

import (
	"testing"
	"time"
)

func TestSleptBetween(t *testing.T) {
	for _, tc := range []struct {
		wall, mono time.Duration
		slept      bool
	}{
		{500 * time.Millisecond, 500 * time.Millisecond, false},
		{time.Second, 500 * time.Millisecond, false},                    // an NTP slew or step
		{-time.Hour, 500 * time.Millisecond, false},                     // the clock set back
		{10 * time.Minute, 500 * time.Millisecond, true},                // a suspend
		{wakeSkew + 600*time.Millisecond, 500 * time.Millisecond, true}, // just beyond the skew
	} {
		if got := sleptBetween(tc.wall, tc.mono); got != tc.slept {
			t.Errorf("wall %v, monotonic %v: slept %v, want %v", tc.wall, tc.mono, got, tc.slept)
		}
	}
	// Two real looks in a row: no sleep.
	w := newWakeWatch(time.Now())
	if w.woke(time.Now()) {
		t.Fatal("woke without sleeping")
	}
}
