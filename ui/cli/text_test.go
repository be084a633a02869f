package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"ferry/transfer"
)

const fffd = "\uFFFD"

func TestNeutralise(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain words", "plain words"},
		{"lines\nand\ttabs\n", "lines\nand\ttabs\n"},
		{"ünïcödé ✓ 日本語 🙂", "ünïcödé ✓ 日本語 🙂"},
		// Escape sequences lose their ESC and print as text.
		{"\x1b[31mred\x1b[0m", fffd + "[31mred" + fffd + "[0m"},
		{"\x1b]0;new title\x07", fffd + "]0;new title" + fffd},
		{"\x1b[2J\x1b[H", fffd + "[2J" + fffd + "[H"},
		// Every other C0 control, DEL and the C1 controls (CSI U+009B).
		{"a\x00b\x08c\x0bd\x0ce\x7ff", "a" + fffd + "b" + fffd + "c" + fffd + "d" + fffd + "e" + fffd + "f"},
		{"\u0080x\u009b31my\u009f", fffd + "x" + fffd + "31my" + fffd},
		// Bidi embeddings, overrides and isolates.
		{"abc\u202edcb\u202c", "abc" + fffd + "dcb" + fffd},
		{"\u202a\u202b\u202d\u2066\u2067\u2068\u2069", strings.Repeat(fffd, 7)},
		// Harmless neighbours stay: LRM, ZWJ, NBSP, U+00A0, U+2070.
		{"\u200e\u200d\u00a0\u2070", "\u200e\u200d\u00a0\u2070"},
		// CRLF becomes LF; a lone CR could overwrite the line.
		{"one\r\ntwo\r\n", "one\ntwo\n"},
		{"rm -rf ~\rls", "rm -rf ~" + fffd + "ls"},
		{"\r\r\n", fffd + "\n"},
		{"end\r", "end" + fffd},
		// Bytes that are not UTF-8 (never in a received text).
		{"caf\xe9 \xff\xfe", "caf" + fffd + " " + fffd + fffd},
		{"", ""},
	} {
		if got := Neutralise(tc.in); got != tc.want {
			t.Errorf("Neutralise(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// checkNeutral fails unless s is valid UTF-8 with no control characters
// but '\n' and '\t', and no bidi embeddings, overrides or isolates.
func checkNeutral(t *testing.T, in, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("Neutralise(%q) = %q: not valid UTF-8", in, s)
	}
	for _, r := range s {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			t.Fatalf("Neutralise(%q) = %q keeps %U", in, s, r)
		}
	}
}

func FuzzNeutralise(f *testing.F) {
	for _, s := range []string{"words\n", "\x1b[31mred\x1b[0m\r\n", "\u202eevil\u2066", "\x00\x7f\u0085\u009b", "caf\xe9\r", "\r\r\n\n\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Neutralise(in)
		checkNeutral(t, in, out)
		if Neutralise(out) != out {
			t.Fatalf("Neutralise is not idempotent on %q", in)
		}
		// Printable text, lines and tabs pass unchanged.
		if utf8.ValidString(in) && !strings.ContainsFunc(in, func(r rune) bool { return neutralised(r) }) && out != in {
			t.Fatalf("Neutralise(%q) = %q changed harmless text", in, out)
		}
	})
}

// textEvents is a receiver's events for a text: offer, text, done.
func textEvents(text string) []transfer.Event {
	n := int64(len(text))
	return []transfer.Event{
		{Kind: transfer.EventState, State: transfer.StatePairing, Time: at(0)},
		{Kind: transfer.EventOffer, IsText: true, Bytes: n, Time: at(0)},
		{Kind: transfer.EventState, State: transfer.StateReceiving, Time: at(10)},
		{Kind: transfer.EventText, Text: text, Bytes: n, Time: at(20)},
		{Kind: transfer.EventState, State: transfer.StateDone, Time: at(20)},
		{Kind: transfer.EventDone, IsText: true, Bytes: n, Elapsed: 120 * 1e6, Time: at(30)},
	}
}

// TestHumanSinkText: the text alone goes to the text output, neutralised
// and otherwise exact (a newline is added only on a terminal); the
// messages say what happened without the text.
func TestHumanSinkText(t *testing.T) {
	text := "hello \x1b[31mworld\x1b[0m\r\nsecond line"
	for _, tty := range []bool{false, true} {
		var msgs, out bytes.Buffer
		sink, finish := NewHumanSink(&msgs, false, WithTextOutput(&out, tty))
		for _, e := range textEvents(text) {
			sink(e)
		}
		finish()
		want := Neutralise(text)
		if tty {
			want += "\n"
		}
		if out.String() != want {
			t.Errorf("tty %v: text output %q, want %q", tty, out.String(), want)
		}
		n := len(text) // 33
		for _, p := range []string{fmt.Sprintf("Offer: a text of %d bytes\n", n), "Receiving...\n", fmt.Sprintf("Done: a text of %d bytes in 0.1s\n", n)} {
			if !strings.Contains(msgs.String(), p) {
				t.Errorf("messages lack %q:\n%s", p, msgs.String())
			}
		}
		if strings.Contains(msgs.String(), "world") {
			t.Errorf("the text is among the messages:\n%s", msgs.String())
		}
	}
	// Without WithTextOutput the text goes with the messages, neutralised.
	var all bytes.Buffer
	sink, _ := NewHumanSink(&all, false)
	sink(transfer.Event{Kind: transfer.EventText, Text: "\x1b]0;x\x07hi\n"})
	if all.String() != fffd+"]0;x"+fffd+"hi\n" {
		t.Errorf("text without WithTextOutput: %q", all.String())
	}
	if got := textQuestion(42); got != "Receive a text of 42 bytes from the sender?" {
		t.Errorf("question %q", got)
	}
}

// TestJSONSinkText: the offer says it is a text; the text event carries
// the text exactly, its control characters escaped by JSON.
func TestJSONSinkText(t *testing.T) {
	var buf bytes.Buffer
	sink := NewJSONSink(&buf)
	for _, e := range textEvents("hi \x1b[31m\u202e\n") {
		sink(e)
	}
	got := lines(t, buf.String())
	want := []string{
		`{"event":"state","state":"pairing"}`,
		`{"event":"offer","files":0,"bytes":12,"type":"text"}`,
		`{"event":"state","state":"receiving"}`,
		`{"event":"text","text":"hi \u001b[31m` + "\u202e" + `\n"}`,
		`{"event":"state","state":"done"}`,
		`{"event":"done","bytes":12,"files":0,"elapsed_ms":120,"wire_bytes":0}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := decode(t, got[3]); m["text"] != "hi \x1b[31m\u202e\n" {
		t.Errorf("the text event decodes to %q", m["text"])
	}
}

// TestReadTextArg: --text TEXT as given, --text - from standard input up
// to 1 MiB, and why not otherwise.
func TestReadTextArg(t *testing.T) {
	stdin := func(s string) Env { return Env{Stdin: strings.NewReader(s), Stderr: &bytes.Buffer{}} }
	max := strings.Repeat("é", transfer.MaxTextBytes/2)
	for _, tc := range []struct {
		arg  string
		env  Env
		want string
		err  error
	}{
		{arg: "some words", env: Env{}, want: "some words"},
		{arg: "-", env: stdin("from\nstdin\n"), want: "from\nstdin\n"},
		{arg: "-", env: stdin(max), want: max},
		{arg: "-", env: stdin(max + "x"), err: transfer.ErrTextTooLong},
		{arg: "-", env: stdin(strings.Repeat("x", 3<<20)), err: transfer.ErrTextTooLong},
		{arg: "-", env: stdin("caf\xe9"), err: transfer.ErrTextNotUTF8},
		{arg: "-", env: stdin(""), err: transfer.ErrTextEmpty},
		{arg: "", env: Env{}, err: transfer.ErrTextEmpty},
		{arg: "bad \xff", env: Env{}, err: transfer.ErrTextNotUTF8},
	} {
		got, err := readTextArg(tc.arg, tc.env)
		if err != tc.err || (err == nil && got != tc.want) {
			t.Errorf("readTextArg(%.20q): %.20q, %v; want %.20q, %v", tc.arg, got, err, tc.want, tc.err)
		}
	}
}

// TestSendTextUsageErrors: --text with paths, an empty, too long or
// invalid text are usage errors that say why, and nothing is sent.
func TestSendTextUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"--text", "hi", "somefile"}, "", "--text and files to send exclude each other"},
		{[]string{"--text", ""}, "", "the text is empty"},
		{[]string{"--text", "-"}, "", "the text is empty"},
		{[]string{"--text", "-"}, strings.Repeat("x", transfer.MaxTextBytes+1), "longer than 1048576 bytes (1 MiB)"},
		{[]string{"--text", "-"}, "caf\xe9", "not valid UTF-8"},
		{[]string{"--text", "caf\xe9"}, "", "not valid UTF-8"},
		{[]string{"--text"}, "", "flag needs an argument"},
		{nil, "", "name at least one file or folder to send, or a --text"},
	} {
		var stdout, stderr bytes.Buffer
		env := Env{Stdin: strings.NewReader(tc.stdin), Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
		if code := Send(context.Background(), tc.args, env); code != ExitUsage {
			t.Errorf("%q: exit %d, want %d", tc.args, code, ExitUsage)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q does not say %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout %q", tc.args, stdout.String())
		}
	}
}
