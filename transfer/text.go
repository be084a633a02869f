package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"
)

// A text offer (ferry send --text) travels over the same pairing,
// connection and control stream as files; nothing is written to disk on
// either side. On the control stream:
//
//	HELLO   S->R  2 (protocolText) | JSON textOffer {"kind":"text","bytes":N}
//	ACCEPT  R->S  {} (or DECLINE, or ERROR, as for files)
//	TEXT    S->R  the text: exactly N bytes of UTF-8
//	DONE    R->S  empty: the text arrived and was handed on (EventText)
//
// There are no data streams and no reconnecting: a text is at most
// MaxTextBytes, sent again in a moment. Both sides bound the size and
// check the encoding; the receiver treats a sender that breaks either
// rule (an offer over the limit, a TEXT frame of another length than
// offered, invalid UTF-8) as hostile and stops with an error of kind
// KindBadPath, as for a malformed manifest.

// MaxTextBytes bounds a text offer, on both sides: 1 MiB.
const MaxTextBytes = 1 << 20

// offerKindText is textOffer.Kind for a text.
const offerKindText = "text"

// textOffer is the JSON of a version 2 HELLO. Kind leaves room for other
// kinds of offer; a receiver refuses kinds it does not know.
type textOffer struct {
	Kind  string `json:"kind"`
	Bytes int64  `json:"bytes"`
}

// Reasons CheckText gives.
var (
	ErrTextEmpty   = errors.New("the text is empty: there is nothing to send")
	ErrTextTooLong = fmt.Errorf("the text is longer than %d bytes (1 MiB), the most ferry sends as a text; send it as a file instead", MaxTextBytes)
	ErrTextNotUTF8 = errors.New("the text is not valid UTF-8; send it as a file instead")
)

// CheckText reports why text cannot be sent as a text (ErrTextEmpty,
// ErrTextTooLong, ErrTextNotUTF8), or nil.
func CheckText(text string) error {
	switch {
	case text == "":
		return ErrTextEmpty
	case len(text) > MaxTextBytes:
		return ErrTextTooLong
	case !utf8.ValidString(text):
		return ErrTextNotUTF8
	}
	return nil
}

// badTextHint is said when the receiver refuses what a sender sent.
const badTextHint = "the sender's text was refused and nothing was shown"

// parseTextOffer checks a version 2 HELLO's offer and returns the size of
// the text offered.
func parseTextOffer(b []byte) (int64, error) {
	var o textOffer
	if err := json.Unmarshal(b, &o); err != nil {
		return 0, Errorf(KindBadPath, badTextHint, "malformed offer: %v", err)
	}
	if o.Kind != offerKindText {
		return 0, Errorf(KindBadPath, "use the same ferry version on both sides", "an offer of kind %q, this ferry understands %q", cleanPeerText(o.Kind), offerKindText)
	}
	if o.Bytes < 1 || o.Bytes > MaxTextBytes {
		return 0, Errorf(KindBadPath, badTextHint, "a text of %d bytes offered, the limit is 1 to %d", o.Bytes, MaxTextBytes)
	}
	return o.Bytes, nil
}

// sendText offers text on conn and, once accepted, sends it and waits for
// the receiver's DONE.
func sendText(ctx context.Context, conn Conn, text string, emit Sink) (Stats, error) {
	if err := CheckText(text); err != nil {
		return Stats{}, &Error{Kind: KindInternal, Err: err}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wire atomic.Int64
	st := Stats{Bytes: int64(len(text)), Text: true}
	fail := func(err error) (Stats, error) {
		st.WireBytes = wire.Load()
		return st, err
	}
	offer, err := json.Marshal(textOffer{Kind: offerKindText, Bytes: int64(len(text))})
	if err != nil {
		return fail(err)
	}
	ctl, err := conn.OpenStream(ctx)
	if err != nil {
		return fail(peerGone(err))
	}
	defer ctl.CancelRead(codeCanceled)
	defer cancelWithContext(ctx, ctl)()
	out := countingWriter{w: ctl, n: &wire}
	if err := writeControl(out, frameHello, append([]byte{protocolText}, offer...)); err != nil {
		return fail(peerGone(err))
	}
	emit(Event{Kind: EventState, State: StateOffered})
	if _, err := readAnswer(ctl); err != nil {
		if KindOf(err) == KindInternal {
			// What an older ferry answers a version it does not know.
			err = &Error{Kind: KindInternal, Err: err, Hint: "a ferry older than this one cannot receive texts: update it, or send the text as a file"}
		}
		return fail(err)
	}
	accepted := time.Now()
	emit(Event{Kind: EventState, State: StateSending})
	if err := writeControl(out, frameText, []byte(text)); err != nil {
		return fail(peerGone(err))
	}
	st.Moved = st.Bytes
	f, err := readControl(ctl)
	if err != nil {
		return fail(peerGone(err))
	}
	switch f.typ {
	case frameDone:
		_ = ctl.Close()
		st.Elapsed = time.Since(accepted)
		return fail(nil)
	case frameError:
		return fail(peerError(f.payload))
	}
	return fail(fmt.Errorf("transfer: unexpected control frame %d after the text", f.typ))
}

// maxTextErrorFrame is how long a frame the receiver reads in place of the
// text may be: room for the sender's ERROR when the text is shorter.
const maxTextErrorFrame = 4096

// receiveText takes a text offer (body: a version 2 HELLO's offer JSON),
// asks about it and, once accepted, hands the text on as EventText.
// Nothing is written to disk.
func receiveText(ctx context.Context, ctl *quic.Stream, body []byte, opts ReceiveOptions, wire *atomic.Int64) (Stats, error) {
	emit := opts.Sink
	defer cancelWithContext(ctx, ctl)()
	// refuse tells the sender why the receiver stops.
	refuse := func(err error) (Stats, error) {
		_ = writeControlJSON(ctl, frameError, errorMsg{Kind: KindOf(err), Message: "the receiver refused the text: " + err.Error()})
		awaitHangup(ctl)
		return Stats{}, err
	}
	n, err := parseTextOffer(body)
	if err != nil {
		return refuse(err)
	}
	emit(Event{Kind: EventOffer, IsText: true, Bytes: n})
	ask := opts.AcceptText
	if ask == nil && opts.Accept != nil {
		ask = func(context.Context, int64) (bool, error) {
			return false, Errorf(KindDeclined, "", "a text was offered, and this receiver only asks about files")
		}
	}
	var decideText func(context.Context) (bool, error)
	if ask != nil {
		decideText = func(ctx context.Context) (bool, error) { return ask(ctx, n) }
	}
	if err := decide(ctx, ctl, emit, decideText); err != nil {
		return Stats{}, err
	}
	accepted := time.Now()
	if err := writeControlJSON(ctl, frameAccept, acceptMsg{}); err != nil {
		return Stats{}, peerGone(err)
	}
	emit(Event{Kind: EventState, State: StateReceiving})
	f, err := readControlLimit(ctl, uint32(max(n, maxTextErrorFrame)))
	var tooLarge *frameTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return refuse(Errorf(KindBadPath, badTextHint, "the sender sent %d bytes after offering a text of %d", tooLarge.n, n))
	case err != nil:
		return Stats{}, peerGone(err)
	}
	wire.Add(int64(len(f.payload)) + controlHeaderLen)
	switch {
	case f.typ == frameError:
		return Stats{}, peerError(f.payload)
	case f.typ != frameText:
		return refuse(fmt.Errorf("transfer: unexpected control frame %d instead of the text", f.typ))
	case int64(len(f.payload)) != n:
		return refuse(Errorf(KindBadPath, badTextHint, "the sender sent %d bytes after offering a text of %d", len(f.payload), n))
	case !utf8.Valid(f.payload):
		return refuse(Errorf(KindBadPath, badTextHint, "the text is not valid UTF-8"))
	}
	emit(Event{Kind: EventText, Text: string(f.payload), Bytes: n})
	if err := writeControl(ctl, frameDone, nil); err != nil {
		return Stats{}, peerGone(err)
	}
	awaitHangup(ctl)
	emit(Event{Kind: EventState, State: StateDone})
	return Stats{Bytes: n, Moved: n, WireBytes: wire.Load(), Elapsed: time.Since(accepted), Text: true}, nil
}
