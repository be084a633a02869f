package transfer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// of lists the events of kind.
func (l *eventLog) of(kind EventKind) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// sendTextAsync runs the real Send of text on conn in the background.
func sendTextAsync(ctx context.Context, conn Conn, text string) <-chan sendResult {
	ch := make(chan sendResult, 1)
	go func() {
		st, err := Send(ctx, conn, SendOptions{Text: text})
		ch <- sendResult{st, err}
	}()
	return ch
}

// TestTextRoundTrip: a text arrives exactly as sent (control characters
// and all: neutralising is the terminal's business), after the receiver
// was asked about a text of its length; nothing is written to the download
// folder, not even the partial folder, and both sides count the same wire
// bytes.
func TestTextRoundTrip(t *testing.T) {
	for name, text := range map[string]string{
		"words":    "some words\n",
		"controls": "\x1b[31mred\x1b[0m\r\n\u202eevil\u2066\x00\x7f\u0085 ünïcödé ✓",
		"1 MiB":    strings.Repeat("ab\n", MaxTextBytes/3) + strings.Repeat("x", MaxTextBytes%3),
	} {
		t.Run(name, func(t *testing.T) {
			parent, out := hostileDirs(t)
			before := snapshotTree(t, parent)
			sc, rc := loopbackConns(t)
			ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
			defer cancel()
			sent := sendTextAsync(ctx, sc, text)
			var log eventLog
			var asked int64
			rst, err := Receive(ctx, rc, ReceiveOptions{
				OutDir: out,
				Sink:   log.sink,
				Accept: func(context.Context, *Manifest) (bool, error) {
					t.Error("asked about files for a text")
					return false, nil
				},
				AcceptText: func(_ context.Context, n int64) (bool, error) { asked = n; return true, nil },
			})
			s := waitResult(t, "Send", sent)
			if err != nil || s.err != nil {
				t.Fatalf("receive %v, send %v", err, s.err)
			}
			if asked != int64(len(text)) {
				t.Errorf("asked about a text of %d bytes, want %d", asked, len(text))
			}
			offers := log.of(EventOffer)
			if len(offers) != 1 || !offers[0].IsText || offers[0].Bytes != int64(len(text)) || offers[0].Files != 0 {
				t.Errorf("offer events %+v, want one text offer of %d bytes", offers, len(text))
			}
			got := log.of(EventText)
			if len(got) != 1 || got[0].Text != text || got[0].Bytes != int64(len(text)) {
				t.Fatalf("text events: %d, want one with the text exactly", len(got))
			}
			if !rst.Text || !s.st.Text || rst.Bytes != int64(len(text)) || s.st.Bytes != rst.Bytes || rst.Files != 0 {
				t.Errorf("stats: receiver %+v, sender %+v", rst, s.st)
			}
			if rst.WireBytes != s.st.WireBytes || rst.WireBytes < int64(len(text)) {
				t.Errorf("wire bytes: receiver %d, sender %d, text %d", rst.WireBytes, s.st.WireBytes, len(text))
			}
			checkTree(t, parent, before, func(string, string) bool { return false })
		})
	}
}

// TestTextDeclined: saying no (or having no way to ask about texts) ends
// both sides with KindDeclined and nothing received.
func TestTextDeclined(t *testing.T) {
	no := func(context.Context, int64) (bool, error) { return false, nil }
	for name, opts := range map[string]ReceiveOptions{
		"said no":          {AcceptText: no},
		"asks about files": {Accept: func(context.Context, *Manifest) (bool, error) { return true, nil }},
	} {
		t.Run(name, func(t *testing.T) {
			sc, rc := loopbackConns(t)
			ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
			defer cancel()
			sent := sendTextAsync(ctx, sc, "hello")
			var log eventLog
			opts.OutDir, opts.Sink = t.TempDir(), log.sink
			_, err := Receive(ctx, rc, opts)
			s := waitResult(t, "Send", sent)
			if KindOf(err) != KindDeclined || KindOf(s.err) != KindDeclined {
				t.Fatalf("receive %v, send %v: want both declined", err, s.err)
			}
			if n := len(log.of(EventText)); n != 0 {
				t.Errorf("%d text events after declining", n)
			}
		})
	}
}

// TestSendTextRefused: the sender refuses what it must not send before it
// touches the connection.
func TestSendTextRefused(t *testing.T) {
	for text, want := range map[string]error{
		"":                                    ErrTextEmpty,
		strings.Repeat("x", MaxTextBytes+1):   ErrTextTooLong,
		"caf\xe9":                             ErrTextNotUTF8,
		"ok\xff" + strings.Repeat("x", 10000): ErrTextNotUTF8,
	} {
		_, err := Send(context.Background(), nil, SendOptions{Text: text})
		if !errors.Is(err, want) {
			t.Errorf("a text of %d bytes: %v, want %v", len(text), err, want)
		}
		if _, err := SendText(context.Background(), Config{}, text, nil); !errors.Is(err, want) {
			t.Errorf("SendText, a text of %d bytes: %v, want %v", len(text), err, want)
		}
	}
	if err := CheckText(strings.Repeat("é", MaxTextBytes/2)); err != nil {
		t.Errorf("a text of exactly MaxTextBytes refused: %v", err)
	}
}

// helloVersion sends a HELLO of the given version and body.
func (h *hostileSender) helloVersion(version byte, body []byte) {
	h.t.Helper()
	_ = h.ctl.SetWriteDeadline(time.Now().Add(h.wait))
	if err := writeControl(h.ctl, frameHello, append([]byte{version}, body...)); err != nil {
		h.t.Fatalf("write hello: %v", err)
	}
}

func textOfferJSON(t *testing.T, kind string, n int64) []byte {
	t.Helper()
	b, err := json.Marshal(textOffer{Kind: kind, Bytes: n})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileTextSender: a receiver refuses a text offer over the limit
// (before asking anyone), a TEXT frame longer or shorter than offered
// (a longer one before reading it), invalid UTF-8 and other frames: it
// stops with an error, tells the sender, emits no text and writes nothing.
func TestHostileTextSender(t *testing.T) {
	header := func(typ byte, n uint32) []byte {
		b := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], n)
		return b
	}
	frame := func(typ byte, payload string) []byte {
		return append(header(typ, uint32(len(payload))), payload...)
	}
	cases := []struct {
		name  string
		offer []byte // the HELLO's body, version 2
		// text, when set, is written after the receiver's ACCEPT.
		text []byte
		kind ErrorKind
		msg  string
	}{
		{name: "1 MiB + 1 offered", offer: textOfferJSON(t, "text", MaxTextBytes+1), kind: KindBadPath, msg: "a text of 1048577 bytes offered"},
		{name: "0 bytes offered", offer: textOfferJSON(t, "text", 0), kind: KindBadPath, msg: "a text of 0 bytes offered"},
		{name: "negative size", offer: textOfferJSON(t, "text", -5), kind: KindBadPath, msg: "a text of -5 bytes"},
		{name: "unknown kind", offer: textOfferJSON(t, "poem", 5), kind: KindBadPath, msg: `of kind "poem"`},
		{name: "malformed offer", offer: []byte(`{"kind":`), kind: KindBadPath, msg: "malformed offer"},
		{name: "more than offered", offer: textOfferJSON(t, "text", 5), text: frame(frameText, "hello!"), kind: KindBadPath, msg: "sent 6 bytes after offering a text of 5"},
		{name: "1 MiB + 1 after offering 5", offer: textOfferJSON(t, "text", 5), text: header(frameText, MaxTextBytes+1), kind: KindBadPath, msg: "sent 1048577 bytes after offering a text of 5"},
		{name: "less than offered", offer: textOfferJSON(t, "text", 5), text: frame(frameText, "hell"), kind: KindBadPath, msg: "sent 4 bytes after offering a text of 5"},
		{name: "invalid UTF-8", offer: textOfferJSON(t, "text", 5), text: frame(frameText, "hell\xff"), kind: KindBadPath, msg: "not valid UTF-8"},
		{name: "another frame", offer: textOfferJSON(t, "text", 5), text: frame(frameSent, `{"streams":0}`), kind: KindInternal, msg: "unexpected control frame 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			parent, out := hostileDirs(t)
			before := snapshotTree(t, parent)
			sc, rc := loopbackConns(t)
			ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
			defer cancel()
			var log eventLog
			asked := false
			res := startReceive(ctx, rc, ReceiveOptions{OutDir: out, Sink: log.sink,
				AcceptText: func(context.Context, int64) (bool, error) { asked = true; return true, nil }})
			h := newHostileSender(t, sc)
			h.helloVersion(protocolText, c.offer)
			if c.text != nil {
				h.next(frameAccept)
				if _, err := h.ctl.Write(c.text); err != nil {
					t.Fatal(err)
				}
			}
			f := h.next(frameError)
			var em errorMsg
			if err := json.Unmarshal(f.payload, &em); err != nil || em.Kind != c.kind {
				t.Errorf("ERROR frame %s (%v), want kind %q", f.payload, err, c.kind)
			}
			h.hangUp()
			r := waitResult(t, "Receive", res)
			if r.err == nil || KindOf(r.err) != c.kind || !strings.Contains(r.err.Error(), c.msg) {
				t.Errorf("Receive: %v (kind %q), want kind %q mentioning %q", r.err, KindOf(r.err), c.kind, c.msg)
			}
			if c.text == nil && asked {
				t.Error("the user was asked about a refused offer")
			}
			if n := len(log.of(EventText)); n != 0 {
				t.Errorf("%d text events from a hostile sender", n)
			}
			checkTree(t, parent, before, func(string, string) bool { return false })
		})
	}
}

// TestOldProtocolPeers: a receiver from before texts refuses the version 2
// HELLO the way ferry always refused unknown versions, and the sender says
// so with advice; this receiver refuses a version it does not know the same
// way. File offers keep version 1, so an old receiver still takes files.
func TestOldProtocolPeers(t *testing.T) {
	t.Run("old receiver", func(t *testing.T) {
		sc, rc := loopbackConns(t)
		ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
		defer cancel()
		sent := sendTextAsync(ctx, sc, "hello")
		// The version check of a receiver that speaks only version 1, as
		// it shipped.
		ctl, err := rc.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f, err := readControl(ctl)
		if err != nil || f.typ != frameHello {
			t.Fatalf("no HELLO: %v", err)
		}
		if f.payload[0] == 1 {
			t.Fatal("a text offer carries version 1: an old receiver would read it as a manifest")
		}
		old := Errorf(KindInternal, "use the same ferry version on both sides", "the sender speaks transfer protocol %d, this ferry speaks %d", f.payload[0], 1)
		_ = writeControlJSON(ctl, frameError, errorMsg{Kind: KindInternal, Message: old.Error()})
		r := waitResult(t, "Send", sent)
		if r.err == nil || !strings.Contains(r.err.Error(), "the sender speaks transfer protocol 2, this ferry speaks 1") ||
			!strings.Contains(r.err.Error(), "older than this one cannot receive texts") {
			t.Fatalf("Send against an old receiver: %v", r.err)
		}
		ctl.CancelRead(codeCanceled)
	})
	t.Run("unknown version", func(t *testing.T) {
		sc, rc := loopbackConns(t)
		ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
		defer cancel()
		res := startReceive(ctx, rc, ReceiveOptions{OutDir: t.TempDir()})
		h := newHostileSender(t, sc)
		h.helloVersion(protocolText+1, []byte(`{"kind":"text","bytes":5}`))
		f := h.next(frameError)
		if !strings.Contains(string(f.payload), "transfer protocol 3") {
			t.Errorf("ERROR frame %s does not name the version", f.payload)
		}
		h.hangUp()
		if r := waitResult(t, "Receive", res); r.err == nil || !strings.Contains(r.err.Error(), "use the same ferry version") {
			t.Errorf("Receive: %v", r.err)
		}
	})
	t.Run("file offers keep version 1", func(t *testing.T) {
		sc, rc := loopbackConns(t)
		ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
		defer cancel()
		data := []byte("x")
		m := &Manifest{Version: ManifestVersion, Hash: HashName, ChunkSize: MinChunkSize, Files: []FileEntry{entryFor("f", data, MinChunkSize)}}
		go func() { _, _ = Send(ctx, sc, SendOptions{Manifest: m, Sources: []string{"/nonexistent"}}) }()
		ctl, err := rc.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer ctl.CancelRead(codeCanceled)
		if f, err := readControl(ctl); err != nil || f.typ != frameHello || f.payload[0] != 1 {
			t.Fatalf("file HELLO: %v, version %d", err, f.payload[0])
		}
	})
}
