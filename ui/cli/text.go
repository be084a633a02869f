package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"ferry/transfer"
)

// Neutralise makes a received text safe to print on a terminal: what could
// move the cursor, change colours, retitle the window or reorder what is
// shown is replaced, visibly, by U+FFFD (�), one for each character:
//
//   - C0 controls (U+0000–U+001F) except '\n' and '\t', so an escape
//     sequence (ESC [ ...) loses its ESC and prints as plain text;
//   - DEL (U+007F) and the C1 controls (U+0080–U+009F, among them the
//     one-character CSI U+009B);
//   - the bidirectional embeddings and overrides (U+202A–U+202E) and
//     isolates (U+2066–U+2069), which can make text read differently
//     from what it is;
//   - bytes that are not UTF-8 (a received text never has any: the engine
//     refuses it first).
//
// A CR directly before a LF is dropped, so text written with Windows line
// ends shows as lines rather than as a � at the end of every one; a lone
// CR, which would let later text overwrite earlier text, is replaced. The
// result is valid UTF-8 with no control characters but '\n' and '\t'.
func Neutralise(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			// Dropped: the '\n' ends the line.
		case r == utf8.RuneError && size == 1, neutralised(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// neutralised reports whether Neutralise replaces r.
func neutralised(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// printText writes a received text, neutralised, to w: exactly that, plus
// a final newline on a terminal (tty) when the text has none, so the
// shell's prompt starts on a line of its own.
func printText(w io.Writer, tty bool, text string) {
	out := Neutralise(text)
	if tty && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	_, _ = io.WriteString(w, out)
}

// textQuestion asks whether to receive a text of n bytes.
func textQuestion(n int64) string {
	return "Receive " + TextSize(n) + " from the sender?"
}

// readTextArg is the text `ferry send --text ARG` sends: ARG itself, or for
// "-" standard input, read up to one byte past transfer.MaxTextBytes to
// tell a text that is too long. Errors say why it cannot be sent.
func readTextArg(arg string, env Env) (string, error) {
	text := arg
	if arg == "-" {
		if env.Stdin == nil {
			return "", transfer.ErrTextEmpty
		}
		if env.StdinTTY {
			fmt.Fprintln(env.Stderr, "Type the text to send, then press Ctrl-D on a line of its own:")
		}
		b, err := io.ReadAll(io.LimitReader(env.Stdin, transfer.MaxTextBytes+1))
		if err != nil {
			return "", fmt.Errorf("cannot read the text from standard input: %w", err)
		}
		text = string(b)
	}
	return text, transfer.CheckText(text)
}
