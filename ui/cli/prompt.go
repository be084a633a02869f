package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxHints is how many completions PromptCode shows for "partial?".
const maxHints = 5

// PromptCode asks for the share code on a terminal (prompt "Enter the
// code: "), reading one line from in; it never echoes anything else and
// returns the trimmed line. complete may be nil; it is only used to print a
// hint of up to 5 completions when the user enters a partial word followed
// by '?' (then prompt again). The partial word is the text after the last
// '-' or space, so "7-gui?" asks for words starting with "gui". Blank lines
// prompt again too. in is read one byte at a time, so nothing after the
// line is consumed. If in ends before a code is entered, PromptCode returns
// io.EOF.
func PromptCode(in io.Reader, out io.Writer, complete func(partial string, max int) []string) (string, error) {
	for {
		if _, err := io.WriteString(out, "Enter the code: "); err != nil {
			return "", err
		}
		line, err := readLine(in)
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return "", err
		}
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, "?") {
			hint(out, strings.TrimSpace(strings.TrimSuffix(line, "?")), complete)
		} else if line != "" {
			return line, nil
		}
		if err != nil { // io.EOF after a blank line or a '?' query
			return "", err
		}
	}
}

// hint prints up to maxHints completions of the last word of partial.
func hint(out io.Writer, partial string, complete func(string, int) []string) {
	if i := strings.LastIndexAny(partial, "- \t"); i >= 0 {
		partial = partial[i+1:]
	}
	if complete == nil {
		fmt.Fprintln(out, "No suggestions available.")
		return
	}
	words := complete(partial, maxHints)
	if len(words) > maxHints {
		words = words[:maxHints]
	}
	if len(words) == 0 {
		fmt.Fprintf(out, "No code words start with %q.\n", partial)
		return
	}
	fmt.Fprintf(out, "Words starting with %q: %s\n", partial, strings.Join(words, ", "))
}

// Confirm asks "question [y/N] " and returns true only for y/yes
// (case-insensitive). Anything else, including an empty line, is no. If in
// ends before any answer, Confirm returns false and io.EOF.
func Confirm(in io.Reader, out io.Writer, question string) (bool, error) {
	if _, err := fmt.Fprintf(out, "%s [y/N] ", question); err != nil {
		return false, err
	}
	line, err := readLine(in)
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// IsTerminal reports whether f is a terminal (golang.org/x/term).
func IsTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// maxLine bounds a line read from the user.
const maxLine = 4096

// readLine reads up to and without the next '\n' (and a '\r' before it),
// one byte at a time so that nothing past the line is consumed from in. At
// the end of input it returns what it read with io.EOF.
func readLine(in io.Reader) (string, error) {
	var b strings.Builder
	var buf [1]byte
	for {
		n, err := in.Read(buf[:])
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			if b.Len() < maxLine {
				b.WriteByte(buf[0])
			}
		}
		if err != nil {
			return strings.TrimSuffix(b.String(), "\r"), err
		}
	}
}
