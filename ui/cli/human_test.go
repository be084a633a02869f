package cli

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/transfer"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// fullSequence is a whole (if unlikely) run: every event kind.
func fullSequence() []transfer.Event {
	return []transfer.Event{
		{Kind: transfer.EventState, State: transfer.StateHashing, Time: at(0)},
		{Kind: transfer.EventCode, Code: "7-guitar-orbit", Time: at(0)},
		{Kind: transfer.EventState, State: transfer.StateWaiting, Time: at(0)},
		{Kind: transfer.EventOffer, Files: 3, Bytes: 1_200_000_000, Names: []string{"a.txt", "photos"},
			Dest: "/home/x/Downloads", Time: at(0)},
		{Kind: transfer.EventConnected, Path: transfer.PathDirectUDP, Peer: "198.18.0.2:4000", Time: at(0)},
		{Kind: transfer.EventResumed, SkippedBytes: 512_000_000, Time: at(0)},
		{Kind: transfer.EventState, State: transfer.StateReceiving, Time: at(0)},
		{Kind: transfer.EventProgress, Bytes: 600_000_000, Total: 1_200_000_000, Rate: 98e6,
			ETA: 6 * time.Second, Current: "photos/1.jpg", Time: at(100)},
		{Kind: transfer.EventPath, Path: transfer.PathLAN, Peer: "10.0.0.5:4000", Reason: "upgraded", Time: at(200)},
		{Kind: transfer.EventState, State: transfer.StateReconnecting, Time: at(250)},
		{Kind: transfer.EventPath, Path: transfer.PathLAN, Peer: "10.0.0.5:4000", Reason: "reconnected", Time: at(260)},
		{Kind: transfer.EventState, State: transfer.StateReceiving, Time: at(270)},
		{Kind: transfer.EventProgress, Bytes: 1_000_000_000, Total: 1_200_000_000, Rate: 98e6,
			ETA: 2 * time.Second, Time: at(300)},
		{Kind: transfer.EventState, State: transfer.StateVerifying, Time: at(400)},
		{Kind: transfer.EventDone, Bytes: 1_200_000_000, Files: 3, Elapsed: 12300 * time.Millisecond,
			WireBytes: 688_000_000, Time: at(500)},
		{Kind: transfer.EventError, ErrKind: transfer.KindCodeMismatch,
			Message: "the code did not match; check it and try again", Time: at(600)},
	}
}

var documentedPhrases = []string{
	"Code: 7-guitar-orbit\n",
	"On the other computer run:  ferry receive\n",
	"and type the code (or: ferry receive 7-guitar-orbit)\n",
	"Offer: 3 files, 1.2 GB: a.txt, photos → /home/x/Downloads\n",
	"Connected (Direct, 198.18.0.2:4000)\n",
	"Resuming: 512 MB already here\n",
	"Found a direct path: now Local network (10.0.0.5:4000)\n",
	"Connection lost; waiting for the other computer to come back (the transfer resumes by itself)...\n",
	"Reconnected (Local network, 10.0.0.5:4000)\n",
	"Done: 3 files, 1.2 GB in 12.3s (98 MB/s)\n",
	"Error: the code did not match; check it and try again\n",
	"Waiting for the other computer...\n",
	"Verifying...\n",
}

func TestHumanSinkPlain(t *testing.T) {
	var buf bytes.Buffer
	sink, finish := NewHumanSink(&buf, false)
	for _, e := range fullSequence() {
		sink(e)
	}
	finish()
	finish()
	out := buf.String()
	for _, p := range documentedPhrases {
		if !strings.Contains(out, p) {
			t.Errorf("output lacks %q", p)
		}
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("plain output has terminal control characters: %q", out)
	}
	if regexp.MustCompile(`\d\d:\d\d`).MatchString(out) {
		t.Errorf("plain output has a timestamp: %q", out)
	}
	// The first progress event is at 50%, past two milestones: one line.
	if n := strings.Count(out, "Progress: "); n != 2 {
		t.Errorf("got %d progress lines, want 2 (50%% and 75%% milestones):\n%s", n, out)
	}
	if !strings.Contains(out, "Progress: 50% (600 MB of 1.2 GB), 98 MB/s, ETA 6s\n") {
		t.Errorf("progress line not as expected:\n%s", out)
	}
	t.Logf("output:\n%s", out)
}

func TestHumanSinkMilestones(t *testing.T) {
	var buf bytes.Buffer
	sink, _ := NewHumanSink(&buf, false)
	// 100 ms apart, so the 5-second rule never fires.
	for i, b := range []int64{0, 100, 200, 249, 250, 300, 490, 510, 600, 740, 760, 900, 990, 1000} {
		sink(transfer.Event{Kind: transfer.EventProgress, Bytes: b, Total: 1000, Time: at(100 * i)})
	}
	var got []string
	for _, l := range lines(t, buf.String()) {
		got = append(got, strings.SplitN(l, " (", 2)[0])
	}
	want := []string{"Progress: 25%", "Progress: 51%", "Progress: 76%"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
}

func TestHumanSinkPlainEvery5s(t *testing.T) {
	var buf bytes.Buffer
	sink, _ := NewHumanSink(&buf, false)
	// 1% a second over 12 s: lines at 5 s and 10 s only.
	for i := 0; i <= 12; i++ {
		sink(transfer.Event{Kind: transfer.EventProgress, Bytes: int64(i) * 10, Total: 1000, Time: at(1000 * i)})
	}
	want := "Progress: 5% (50 B of 1.0 kB)\nProgress: 10% (100 B of 1.0 kB)\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Unknown total: still every 5 s, no percentage.
	buf.Reset()
	sink, _ = NewHumanSink(&buf, false)
	for i := 0; i <= 6; i++ {
		sink(transfer.Event{Kind: transfer.EventProgress, Bytes: int64(i) * 2000, Rate: 2000, Time: at(1000 * i)})
	}
	if got, want := buf.String(), "Progress: 10 kB, 2.0 kB/s\n"; got != want {
		t.Errorf("unknown total: got %q, want %q", got, want)
	}
}

func TestHumanSinkMessages(t *testing.T) {
	tests := []struct {
		ev   transfer.Event
		want string
	}{
		{transfer.Event{Kind: transfer.EventOffer, Files: 1, Bytes: 999}, "Offer: 1 file, 999 B\n"},
		{transfer.Event{Kind: transfer.EventOffer, Files: 9, Bytes: 2000,
			Names: []string{"a", "b", "c", "d", "e", "f", "g"}}, "Offer: 9 files, 2.0 kB: a, b, c, d, e, ...\n"},
		{transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathRelay}, "Connected (Relayed through your server)\n"},
		{transfer.Event{Kind: transfer.EventPath, Path: transfer.PathDirectUDP, Peer: "198.18.0.2:4000", Reason: "upgraded"},
			"Found a direct path: now Direct (198.18.0.2:4000)\n"},
		{transfer.Event{Kind: transfer.EventPath, Path: transfer.PathDirectTCP, Peer: "[2001:db8::1]:5"},
			"Network changed: now Direct (TCP) ([2001:db8::1]:5)\n"},
		{transfer.Event{Kind: transfer.EventPath, Path: transfer.PathRelay, Peer: "198.18.0.10:7887", Reason: "fallback"},
			"Network changed: now Relayed through your server (198.18.0.10:7887)\n"},
		{transfer.Event{Kind: transfer.EventPath, Path: transfer.PathDirectUDP, Peer: "198.18.2.2:4000", Reason: "migrated"},
			"Network changed: now Direct (198.18.2.2:4000)\n"},
		{transfer.Event{Kind: transfer.EventDone, Files: 1, Bytes: 10, Elapsed: 0}, "Done: 1 file, 10 B in 0.0s\n"},
		{transfer.Event{Kind: transfer.EventDone, Files: 2, Bytes: 3_000_000_000, Elapsed: 125 * time.Second},
			"Done: 2 files, 3.0 GB in 2m5s (24 MB/s)\n"},
		{transfer.Event{Kind: transfer.EventError, ErrKind: transfer.KindTimeout}, "Error: timeout\n"},
		{transfer.Event{Kind: transfer.EventSkipped, File: "/a/link", Reason: "link"},
			"Not sent: /a/link (a symbolic link; --follow-links sends what links point to)\n"},
		{transfer.Event{Kind: transfer.EventSkipped, File: "/a/up", Reason: "loop"}, "Not sent: /a/up (a link back into a folder it is in)\n"},
		{transfer.Event{Kind: transfer.EventState, State: transfer.StateDone}, ""},
		{transfer.Event{Kind: transfer.EventState, State: "weird"}, "State: weird\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		sink, _ := NewHumanSink(&buf, false)
		sink(tt.ev)
		if got := buf.String(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.ev, got, tt.want)
		}
	}
}

func TestHumanSinkStateRepeats(t *testing.T) {
	var buf bytes.Buffer
	sink, _ := NewHumanSink(&buf, false)
	for _, st := range []transfer.State{transfer.StatePairing, transfer.StatePairing, transfer.StateConnecting, transfer.StatePairing} {
		sink(transfer.Event{Kind: transfer.EventState, State: st})
	}
	if got, want := buf.String(), "Pairing...\nConnecting...\nPairing...\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestHumanSinkTTY(t *testing.T) {
	var buf bytes.Buffer
	sink, finish := NewHumanSink(&buf, true)
	for _, e := range fullSequence() {
		sink(e)
	}
	finish()
	finish()
	out := buf.String()
	for _, p := range []string{"Code: 7-guitar-orbit", "Connected (Direct, 198.18.0.2:4000)",
		"Found a direct path: now Local network (10.0.0.5:4000)", "Done: 3 files, 1.2 GB in 12.3s (98 MB/s)",
		"Error: the code did not match", "1.0 GB / 1.2 GB, 98 MB/s, ETA 2s", "100%"} {
		if !strings.Contains(out, p) {
			t.Errorf("tty output lacks %q", p)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("tty output does not end with a newline: %q", out)
	}
	t.Logf("tty output: %q", out)
}

func TestHumanSinkTTYFinishMidTransfer(t *testing.T) {
	var buf bytes.Buffer
	sink, finish := NewHumanSink(&buf, true)
	for i := 0; i <= 20; i++ {
		sink(transfer.Event{Kind: transfer.EventProgress, Bytes: int64(i) * 10, Total: 1000, Rate: 1e3, Time: at(50 * i)})
	}
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 300, Total: 2000, Time: at(5000)})  // total grew
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 5000, Total: 2000, Time: at(6000)}) // over the top
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 10})                                // after the bar ended
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 0, Total: 0})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); finish() }()
	}
	wg.Wait()
	n := buf.Len()
	finish()
	if buf.Len() != n {
		t.Errorf("finish wrote again: %q", buf.String()[n:])
	}
	if !strings.HasSuffix(buf.String(), "\n") {
		t.Errorf("bar line not ended: %q", buf.String())
	}

	// finish while the bar is live ends the line once; later lines start fresh.
	buf.Reset()
	sink, finish = NewHumanSink(&buf, true)
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 10, Total: 1000, Time: at(0)})
	finish()
	finish()
	if !strings.HasSuffix(buf.String(), "\n") || strings.HasSuffix(buf.String(), "\n\n") {
		t.Errorf("want exactly one newline after the bar: %q", buf.String())
	}
	sink(transfer.Event{Kind: transfer.EventError, Message: "canceled"})
	if !strings.HasSuffix(buf.String(), "\nError: canceled\n") {
		t.Errorf("error not on its own line: %q", buf.String())
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{999, "999 B"},
		{1000, "1.0 kB"},
		{1500, "1.5 kB"},
		{9_940, "9.9 kB"},
		{9_960, "10 kB"},
		{999_499, "999 kB"},
		{999_999, "1.0 MB"},
		{98_000_000, "98 MB"},
		{512_000_000, "512 MB"},
		{1_200_000_000, "1.2 GB"},
		{1_500_000_000, "1.5 GB"},
		{2_000_000_000_000, "2.0 TB"},
		{9_223_372_036_854_775_807, "9.2 EB"},
		{-1500, "-1.5 kB"},
		{-9_223_372_036_854_775_808, "-9.2 EB"},
	}
	for _, tt := range tests {
		if got := HumanBytes(tt.n); got != tt.want {
			t.Errorf("HumanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestPathWords(t *testing.T) {
	tests := []struct {
		p    transfer.PathLabel
		want string
	}{
		{transfer.PathLAN, "Local network"},
		{transfer.PathDirectUDP, "Direct"},
		{transfer.PathDirectTCP, "Direct (TCP)"},
		{transfer.PathRelay, "Relayed through your server"},
		{"", "Unknown"},
		{"carrier-pigeon", "carrier-pigeon"},
	}
	for _, tt := range tests {
		if got := PathWords(tt.p); got != tt.want {
			t.Errorf("PathWords(%q) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestHumanSinkTTYNoANSI(t *testing.T) {
	defer func(old bool) { useANSI = old }(useANSI)
	useANSI = false
	var buf bytes.Buffer
	sink, finish := NewHumanSink(&buf, true)
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 10, Total: 1000, Time: at(0)})
	sink(transfer.Event{Kind: transfer.EventState, State: transfer.StateSending})
	sink(transfer.Event{Kind: transfer.EventDone, Bytes: 1000, Files: 1, Elapsed: time.Second})
	finish()
	out := buf.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("ANSI escapes with useANSI false: %q", out)
	}
	if !strings.Contains(out, "Sending...\n") || !strings.HasSuffix(out, "Done: 1 file, 1.0 kB in 1.0s (1.0 kB/s)\n") {
		t.Errorf("unexpected output: %q", out)
	}
}
