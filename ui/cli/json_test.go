package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/transfer"
)

// lines splits output into its lines, failing on a missing final newline.
func lines(t *testing.T, out string) []string {
	t.Helper()
	if out == "" {
		return nil
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func decode(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q is not a JSON object: %v", line, err)
	}
	return m
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestJSONSinkObjects(t *testing.T) {
	tests := []struct {
		name string
		ev   transfer.Event
		want map[string]any
		line string // exact line, when the field order is checked
	}{
		{
			name: "code",
			ev:   transfer.Event{Kind: transfer.EventCode, Code: "7-guitar-orbit"},
			want: map[string]any{"event": "code", "code": "7-guitar-orbit"},
			line: `{"event":"code","code":"7-guitar-orbit"}`,
		},
		{
			name: "offer",
			ev: transfer.Event{Kind: transfer.EventOffer, Files: 3, Bytes: 1200000000,
				Names: []string{"a.txt", "photos"}, Dest: "/home/x/Downloads"},
			want: map[string]any{"event": "offer", "files": 3.0, "bytes": 1200000000.0,
				"names": []any{"a.txt", "photos"}, "dest": "/home/x/Downloads"},
			line: `{"event":"offer","files":3,"bytes":1200000000,"names":["a.txt","photos"],"dest":"/home/x/Downloads"}`,
		},
		{
			name: "offer without names or dest",
			ev:   transfer.Event{Kind: transfer.EventOffer, Files: 0, Bytes: 0},
			want: map[string]any{"event": "offer", "files": 0.0, "bytes": 0.0},
			line: `{"event":"offer","files":0,"bytes":0}`,
		},
		{
			name: "connected",
			ev:   transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathDirectUDP, Peer: "198.18.0.2:4000"},
			want: map[string]any{"event": "connected", "path": "direct-udp", "peer": "198.18.0.2:4000"},
			line: `{"event":"connected","path":"direct-udp","peer":"198.18.0.2:4000"}`,
		},
		{
			name: "path",
			ev:   transfer.Event{Kind: transfer.EventPath, Path: transfer.PathLAN, Peer: "10.0.0.5:4000", Reason: "upgraded"},
			want: map[string]any{"event": "path", "path": "lan", "peer": "10.0.0.5:4000", "reason": "upgraded"},
			line: `{"event":"path","path":"lan","peer":"10.0.0.5:4000","reason":"upgraded"}`,
		},
		{
			name: "skipped",
			ev:   transfer.Event{Kind: transfer.EventSkipped, File: "/home/x/album/link", Reason: string(transfer.SkipLink)},
			want: map[string]any{"event": "skipped", "file": "/home/x/album/link", "reason": "link"},
			line: `{"event":"skipped","file":"/home/x/album/link","reason":"link"}`,
		},
		{
			name: "resumed",
			ev:   transfer.Event{Kind: transfer.EventResumed, SkippedBytes: 512000000},
			want: map[string]any{"event": "resumed", "skipped_bytes": 512000000.0},
			line: `{"event":"resumed","skipped_bytes":512000000}`,
		},
		{
			name: "progress",
			ev: transfer.Event{Kind: transfer.EventProgress, Bytes: 1000, Total: 4000, Rate: 1234.6,
				ETA: 3 * time.Second, Current: "a.txt"},
			want: map[string]any{"event": "progress", "bytes": 1000.0, "total": 4000.0, "rate": 1235.0},
			line: `{"event":"progress","bytes":1000,"total":4000,"rate":1235}`,
		},
		{
			name: "state",
			ev:   transfer.Event{Kind: transfer.EventState, State: transfer.StateVerifying},
			want: map[string]any{"event": "state", "state": "verifying"},
			line: `{"event":"state","state":"verifying"}`,
		},
		{
			name: "done",
			ev: transfer.Event{Kind: transfer.EventDone, Bytes: 1200000000, Files: 3,
				Elapsed: 12300 * time.Millisecond, WireBytes: 1100000000},
			want: map[string]any{"event": "done", "bytes": 1200000000.0, "files": 3.0,
				"elapsed_ms": 12300.0, "wire_bytes": 1100000000.0},
			line: `{"event":"done","bytes":1200000000,"files":3,"elapsed_ms":12300,"wire_bytes":1100000000}`,
		},
		{
			name: "error",
			ev: transfer.Event{Kind: transfer.EventError, ErrKind: transfer.KindCodeMismatch,
				Message: "the code did not match; check it and try again"},
			want: map[string]any{"event": "error", "kind": "code_mismatch",
				"message": "the code did not match; check it and try again"},
			line: `{"event":"error","kind":"code_mismatch","message":"the code did not match; check it and try again"}`,
		},
		{
			name: "unknown kind",
			ev:   transfer.Event{Kind: "future"},
			want: map[string]any{"event": "future"},
			line: `{"event":"future"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			NewJSONSink(&buf)(tt.ev)
			ls := lines(t, buf.String())
			if len(ls) != 1 {
				t.Fatalf("got %d lines, want 1: %q", len(ls), buf.String())
			}
			got := decode(t, ls[0])
			if !reflect.DeepEqual(keys(got), keys(tt.want)) {
				t.Errorf("keys = %v, want %v", keys(got), keys(tt.want))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("object = %v, want %v", got, tt.want)
			}
			if ls[0] != tt.line {
				t.Errorf("line =\n  %s\nwant\n  %s", ls[0], tt.line)
			}
		})
	}
}

func TestJSONSinkOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	sink := NewJSONSink(&buf)
	sink(transfer.Event{Kind: transfer.EventError, ErrKind: transfer.KindBadPath,
		Message: "bad name \"a\nb\" <&>\r\x00; rename it"})
	sink(transfer.Event{Kind: transfer.EventOffer, Files: 1, Bytes: 1, Names: []string{"line1\nline2"}})
	ls := lines(t, buf.String())
	if len(ls) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(ls), buf.String())
	}
	if got := decode(t, ls[0])["message"]; got != "bad name \"a\nb\" <&>\r\x00; rename it" {
		t.Errorf("message round trip = %q", got)
	}
	if !strings.Contains(ls[0], "<&>") {
		t.Errorf("HTML characters escaped needlessly: %s", ls[0])
	}
	if got := decode(t, ls[1])["names"]; !reflect.DeepEqual(got, []any{"line1\nline2"}) {
		t.Errorf("names round trip = %v", got)
	}
}

func TestJSONSinkErrorDefaults(t *testing.T) {
	var buf bytes.Buffer
	NewJSONSink(&buf)(transfer.Event{Kind: transfer.EventError})
	got := decode(t, strings.TrimSpace(buf.String()))
	want := map[string]any{"event": "error", "kind": "internal", "message": "internal"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func progressAt(t0 time.Time, ms int, bytes int64) transfer.Event {
	return transfer.Event{Kind: transfer.EventProgress, Time: t0.Add(time.Duration(ms) * time.Millisecond),
		Bytes: bytes, Total: 1000, Rate: 100}
}

func TestJSONSinkThrottle(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, final := range []transfer.Event{
		{Kind: transfer.EventDone, Bytes: 1000, Files: 1, Elapsed: time.Second, WireBytes: 900},
		{Kind: transfer.EventError, ErrKind: transfer.KindPeerGone, Message: "the other side went away"},
	} {
		t.Run(string(final.Kind), func(t *testing.T) {
			var buf bytes.Buffer
			sink := NewJSONSink(&buf)
			for i := 0; i < 5; i++ { // 0, 100, 200, 300, 400 ms
				sink(progressAt(t0, i*100, int64(i+1)*100))
			}
			var got []float64
			for _, l := range lines(t, buf.String()) {
				got = append(got, decode(t, l)["bytes"].(float64))
			}
			// 0 ms written; 100, 200 dropped; 300 ms is 300 >= 250 after 0: written; 400 dropped.
			if want := []float64{100, 400}; !reflect.DeepEqual(got, want) {
				t.Fatalf("progress written before %s: bytes %v, want %v", final.Kind, got, want)
			}
			sink(final)
			ls := lines(t, buf.String())
			if len(ls) != 4 {
				t.Fatalf("got %d lines, want 4: %q", len(ls), buf.String())
			}
			if m := decode(t, ls[2]); m["event"] != "progress" || m["bytes"] != 500.0 {
				t.Errorf("line before %s = %s, want the last dropped progress (bytes 500)", final.Kind, ls[2])
			}
			if m := decode(t, ls[3]); m["event"] != string(final.Kind) {
				t.Errorf("last line = %s, want %s", ls[3], final.Kind)
			}
		})
	}
}

func TestJSONSinkThrottleNoPendingDuplicate(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var buf bytes.Buffer
	sink := NewJSONSink(&buf)
	sink(progressAt(t0, 0, 100))
	sink(progressAt(t0, 100, 200))  // dropped
	sink(progressAt(t0, 1000, 300)) // written; the dropped one is superseded
	sink(transfer.Event{Kind: transfer.EventDone})
	var events []string
	for _, l := range lines(t, buf.String()) {
		m := decode(t, l)
		events = append(events, fmt.Sprint(m["event"], m["bytes"]))
	}
	want := []string{"progress100", "progress300", "done0"}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events = %v, want %v", events, want)
	}
}

func TestJSONSinkThrottleWallClock(t *testing.T) {
	var buf bytes.Buffer
	sink := NewJSONSink(&buf)
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 1, Total: 2})
	sink(transfer.Event{Kind: transfer.EventProgress, Bytes: 2, Total: 2}) // well within 250 ms
	if n := len(lines(t, buf.String())); n != 1 {
		t.Fatalf("got %d progress lines, want 1", n)
	}
	sink(transfer.Event{Kind: transfer.EventDone, Bytes: 2})
	ls := lines(t, buf.String())
	if len(ls) != 3 || decode(t, ls[1])["bytes"] != 2.0 {
		t.Errorf("want the dropped final progress before done, got %q", buf.String())
	}
}

// countingWriter counts Write calls, so a test can check one write per line.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func TestJSONSinkConcurrent(t *testing.T) {
	w := &countingWriter{}
	sink := NewJSONSink(w)
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				sink(transfer.Event{Kind: transfer.EventState, State: transfer.StateSending})
				sink(transfer.Event{Kind: transfer.EventProgress, Bytes: int64(i), Total: each})
			}
		}()
	}
	wg.Wait()
	sink(transfer.Event{Kind: transfer.EventDone})
	ls := lines(t, w.buf.String())
	if w.writes != len(ls) {
		t.Errorf("%d writes for %d lines: an event was split across writes", w.writes, len(ls))
	}
	states := 0
	for _, l := range ls {
		if decode(t, l)["event"] == "state" {
			states++
		}
	}
	if states != goroutines*each {
		t.Errorf("got %d state lines, want %d", states, goroutines*each)
	}
}
