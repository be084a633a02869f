package transport

import "testing"

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	steps := []struct {
		counter uint64
		want    bool
	}{
		{0, false},            // never sent
		{1, true}, {1, false}, // replay
		{3, true}, {2, true}, {2, false}, // reordered, then replayed
		{100, true}, {37, true}, {36, false}, // 36 is 64 behind: too old
		{99, true}, {99, false}, {100, false},
		{1000, true}, {999, true}, {100, false},
	}
	for i, s := range steps {
		if got := w.accept(s.counter); got != s.want {
			t.Fatalf("step %d: accept(%d) = %v, want %v", i, s.counter, got, s.want)
		}
	}
}

func FuzzReplayWindow(f *testing.F) {
	f.Add([]byte{1, 2, 3, 1, 2, 200, 3})
	f.Fuzz(func(t *testing.T, seq []byte) {
		var w replayWindow
		accepted := map[uint64]bool{}
		var highest uint64
		for _, b := range seq {
			c := uint64(b)
			ok := w.accept(c)
			if ok && accepted[c] {
				t.Fatalf("counter %d accepted twice", c)
			}
			if ok && c+replayWindowSize <= highest {
				t.Fatalf("counter %d accepted %d behind the highest %d", c, highest-c, highest)
			}
			if !ok && c > highest {
				t.Fatalf("new highest counter %d refused", c)
			}
			if ok {
				accepted[c] = true
				highest = max(highest, c)
			}
		}
	})
}
