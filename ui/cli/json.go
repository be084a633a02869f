package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"sync"
	"time"

	"ferry/transfer"
)

// jsonProgressInterval is the minimum spacing of progress lines in --json
// output: at most four per second.
const jsonProgressInterval = 250 * time.Millisecond

// The --json objects. Field order here is the order on the wire, and the
// names are a public contract for scripts: extend, never rename.
type (
	jsonCode struct {
		Event string `json:"event"`
		Code  string `json:"code"`
		Link  string `json:"link,omitempty"` // added later: extend, never rename
	}
	jsonOffer struct {
		Event string   `json:"event"`
		Files int      `json:"files"`
		Bytes int64    `json:"bytes"`
		Names []string `json:"names,omitempty"`
		Dest  string   `json:"dest,omitempty"`
		Type  string   `json:"type,omitempty"` // added later: "text" for a text offer
	}
	jsonText struct {
		Event string `json:"event"`
		Text  string `json:"text"`
	}
	jsonConnected struct {
		Event string `json:"event"`
		Path  string `json:"path"`
		Peer  string `json:"peer"`
	}
	jsonPath struct {
		Event  string `json:"event"`
		Path   string `json:"path"`
		Peer   string `json:"peer"`
		Reason string `json:"reason"`
	}
	jsonResumed struct {
		Event        string `json:"event"`
		SkippedBytes int64  `json:"skipped_bytes"`
	}
	jsonProgress struct {
		Event string `json:"event"`
		Bytes int64  `json:"bytes"`
		Total int64  `json:"total"`
		Rate  int64  `json:"rate"`
	}
	jsonState struct {
		Event string `json:"event"`
		State string `json:"state"`
	}
	jsonDone struct {
		Event     string `json:"event"`
		Bytes     int64  `json:"bytes"`
		Files     int    `json:"files"`
		ElapsedMS int64  `json:"elapsed_ms"`
		WireBytes int64  `json:"wire_bytes"`
	}
	jsonError struct {
		Event   string `json:"event"`
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	jsonSkipped struct {
		Event  string `json:"event"`
		File   string `json:"file"`
		Reason string `json:"reason"`
	}
	jsonOther struct {
		Event string `json:"event"`
	}
)

// jsonSink holds the state of one NewJSONSink.
type jsonSink struct {
	mu   sync.Mutex
	w    io.Writer
	opts sinkOptions

	lastProgress time.Time       // when the last progress line was written
	wroteAny     bool            // a progress line has been written
	pending      *transfer.Event // the latest progress dropped by the throttle
}

// NewJSONSink returns a Sink that writes one JSON object per line to w for
// each event, with stable names that scripts may rely on:
//
//	{"event":"code","code":"7-guitar-orbit","link":"ferry://receive/7-guitar-orbit"}   (link only WithLink)
//	{"event":"offer","files":N,"bytes":N,"names":[...],"dest":"..."}   (names, dest only when set)
//	{"event":"offer","files":0,"bytes":N,"type":"text"}   (receiver: a text of N bytes is offered)
//	{"event":"text","text":"..."}   (receiver: the text, exactly as sent; JSON escapes its control characters)
//	{"event":"connected","path":"lan|direct-udp|direct-tcp|relay","peer":"IP:PORT"}
//	{"event":"path","path":"...","peer":"IP:PORT","reason":"migrated|upgraded|fallback|reconnected"}
//	{"event":"resumed","skipped_bytes":N}
//	{"event":"progress","bytes":N,"total":N,"rate":BYTES_PER_SECOND}
//	{"event":"state","state":"..."}
//	{"event":"done","bytes":N,"files":N,"elapsed_ms":N,"wire_bytes":N}
//	{"event":"error","kind":"code_mismatch|...","message":"..."}
//	{"event":"skipped","file":"PATH","reason":"link|special|dangling|loop"}   (sender)
//
// elapsed_ms runs from the receiver's acceptance of the offer; wire_bytes
// counts what this run moved from sender to receiver on the network.
// Event kinds it does not know are written as {"event":"KIND"}.
//
// Progress lines are limited to four per second: a progress event within
// 250 ms of the last one written (by Event.Time when set, else the clock)
// is dropped, but the latest dropped one is written just before a done or
// error event so the final numbers are visible. The Sink is safe for
// concurrent use; each event is written with a single Write call.
//
// WithLink adds the share link to the code event; it is left out when no
// link can be made (see code.NewLink). Other options do not apply.
func NewJSONSink(w io.Writer, opts ...SinkOption) transfer.Sink {
	s := &jsonSink{w: w, opts: applyOptions(opts)}
	return s.handle
}

func (s *jsonSink) handle(e transfer.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()

	switch e.Kind {
	case transfer.EventProgress:
		t := e.Time
		if t.IsZero() {
			t = time.Now()
		}
		if s.wroteAny {
			if d := t.Sub(s.lastProgress); d >= 0 && d < jsonProgressInterval {
				ev := e
				s.pending = &ev
				return
			}
		}
		s.wroteAny = true
		s.lastProgress = t
		s.pending = nil
	case transfer.EventDone, transfer.EventError:
		if s.pending != nil {
			s.write(*s.pending)
			s.pending = nil
		}
	}
	s.write(e)
}

// write encodes e as one line and writes it. Errors are ignored: a Sink has
// no way to report them, and the transfer must not stop over its output.
func (s *jsonSink) write(e transfer.Event) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	obj := jsonObject(e)
	if c, ok := obj.(jsonCode); ok {
		c.Link, _ = s.opts.link(e.Code)
		obj = c
	}
	if err := enc.Encode(obj); err != nil {
		return
	}
	_, _ = s.w.Write(buf.Bytes()) // Encode ends the object with '\n'
}

// jsonObject maps an event to its --json object.
func jsonObject(e transfer.Event) any {
	ev := string(e.Kind)
	switch e.Kind {
	case transfer.EventCode:
		return jsonCode{Event: ev, Code: e.Code}
	case transfer.EventOffer:
		o := jsonOffer{Event: ev, Files: e.Files, Bytes: e.Bytes, Names: e.Names, Dest: e.Dest}
		if e.IsText {
			o.Type = "text"
		}
		return o
	case transfer.EventText:
		return jsonText{Event: ev, Text: e.Text}
	case transfer.EventConnected:
		return jsonConnected{Event: ev, Path: string(e.Path), Peer: e.Peer}
	case transfer.EventPath:
		return jsonPath{Event: ev, Path: string(e.Path), Peer: e.Peer, Reason: e.Reason}
	case transfer.EventResumed:
		return jsonResumed{Event: ev, SkippedBytes: e.SkippedBytes}
	case transfer.EventProgress:
		return jsonProgress{Event: ev, Bytes: e.Bytes, Total: e.Total, Rate: roundRate(e.Rate)}
	case transfer.EventState:
		return jsonState{Event: ev, State: string(e.State)}
	case transfer.EventDone:
		return jsonDone{Event: ev, Bytes: e.Bytes, Files: e.Files, ElapsedMS: e.Elapsed.Milliseconds(), WireBytes: e.WireBytes}
	case transfer.EventError:
		kind := e.ErrKind
		if kind == "" {
			kind = transfer.KindInternal
		}
		msg := e.Message
		if msg == "" {
			msg = string(kind)
		}
		return jsonError{Event: ev, Kind: string(kind), Message: msg}
	case transfer.EventSkipped:
		return jsonSkipped{Event: ev, File: e.File, Reason: e.Reason}
	}
	return jsonOther{Event: ev}
}

// roundRate turns a bytes-per-second rate into a JSON integer; NaN,
// infinities and negatives become 0.
func roundRate(r float64) int64 {
	if math.IsNaN(r) || r <= 0 {
		return 0
	}
	if r >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(r))
}
