package code

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestWordLists(t *testing.T) {
	seen := map[string]string{}
	for name, list := range map[string]*[256]string{"even": &evenWords, "odd": &oddWords} {
		for i, w := range list {
			if w == "" {
				t.Fatalf("%s[%#02x] is empty", name, i)
			}
			for _, r := range w {
				if r < 'a' || r > 'z' {
					t.Errorf("%s[%#02x] = %q: not lowercase ASCII letters", name, i, w)
				}
			}
			if other, dup := seen[w]; dup {
				t.Errorf("%q is in %s and %s", w, other, name)
			}
			seen[w] = name
		}
	}
	if len(seen) != 512 {
		t.Fatalf("%d distinct words, want 512", len(seen))
	}
	for _, tc := range []struct {
		list *[256]string
		b    byte
		want string
	}{
		{&evenWords, 0x00, "aardvark"},
		{&oddWords, 0x00, "adroitness"},
		{&evenWords, 0x01, "absurd"},
		{&oddWords, 0x01, "adviser"},
		{&evenWords, 0x80, "merit"},
		{&oddWords, 0x80, "intention"},
		{&evenWords, 0xfe, "woodlark"},
		{&oddWords, 0xfe, "yesteryear"},
		{&evenWords, 0xff, "zulu"},   // "Zulu" in the source
		{&oddWords, 0xff, "yucatan"}, // "Yucatan" in the source
	} {
		if got := tc.list[tc.b]; got != tc.want {
			t.Errorf("word %#02x = %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestWordIndex(t *testing.T) {
	for i := range 256 {
		if b, even, ok := WordIndex(evenWords[i]); !ok || !even || b != byte(i) {
			t.Errorf("WordIndex(%q) = %d, %v, %v", evenWords[i], b, even, ok)
		}
		if b, even, ok := WordIndex(oddWords[i]); !ok || even || b != byte(i) {
			t.Errorf("WordIndex(%q) = %d, %v, %v", oddWords[i], b, even, ok)
		}
	}
	if b, even, ok := WordIndex("Zulu"); !ok || !even || b != 0xff {
		t.Errorf("WordIndex(Zulu) = %d, %v, %v", b, even, ok)
	}
	for _, w := range []string{"", "guitar", "aardvarks", "\u212Aiwi" /* Kelvin sign */, "tiger "} {
		if _, _, ok := WordIndex(w); ok {
			t.Errorf("WordIndex(%q) ok", w)
		}
	}
}

func TestNewRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for i := range 2000 {
		np := strconv.Itoa(1 + i*37%MaxNameplate)
		c, err := New(np)
		if err != nil {
			t.Fatal(err)
		}
		if c.Nameplate != np {
			t.Fatalf("nameplate %q, want %q", c.Nameplate, np)
		}
		if _, even, ok := WordIndex(c.Words[0]); !ok || !even {
			t.Fatalf("first word %q not an even word", c.Words[0])
		}
		if _, even, ok := WordIndex(c.Words[1]); !ok || even {
			t.Fatalf("second word %q not an odd word", c.Words[1])
		}
		s := c.String()
		if want := np + "-" + c.Words[0] + "-" + c.Words[1]; s != want {
			t.Fatalf("String() = %q, want %q", s, want)
		}
		if got, want := string(c.Password()), c.Words[0]+"-"+c.Words[1]; got != want {
			t.Fatalf("Password() = %q, want %q", got, want)
		}
		for _, in := range []string{s, strings.ToUpper(s), " " + strings.ReplaceAll(s, "-", "  ") + "\n"} {
			p, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", in, err)
			}
			if p != c {
				t.Fatalf("Parse(%q) = %+v, want %+v", in, p, c)
			}
		}
		seen[c.Words[0]+c.Words[1]] = true
	}
	// 2000 draws from 65536 codes: all but a few must differ.
	if len(seen) < 1900 {
		t.Errorf("only %d distinct word pairs in 2000 codes", len(seen))
	}
}

func TestNewBadNameplate(t *testing.T) {
	for _, np := range []string{"", "0", "07", "123456", "7a", "-7", " 7"} {
		_, err := New(np)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Kind != ErrNameplate {
			t.Errorf("New(%q) error = %v, want ErrNameplate", np, err)
		}
	}
	for _, np := range []string{"1", "7", "10", "99999"} {
		if _, err := New(np); err != nil {
			t.Errorf("New(%q): %v", np, err)
		}
	}
}

func TestParseVariants(t *testing.T) {
	want := Code{Nameplate: "7", Words: [2]string{"tiger", "tomorrow"}}
	for _, in := range []string{
		"7-tiger-tomorrow",
		"7 tiger tomorrow",
		"7 Tiger  tomorrow",
		"7-TIGER-Tomorrow",
		"7-tiger-tomorrow ",
		"  7-tiger-tomorrow\n",
		"\t7 - tiger - tomorrow\r\n",
		"7--tiger---tomorrow",
		"-7-tiger-tomorrow-",
		"7 -tiger- tomorrow",
		"7\u2013tiger\u2014tomorrow", // en and em dash from a chat app
		"7\u00a0tiger\u00a0tomorrow", // no-break spaces
	} {
		got, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", in, got, want)
		}
		if got.String() != "7-tiger-tomorrow" || string(got.Password()) != "tiger-tomorrow" {
			t.Errorf("Parse(%q): String %q Password %q", in, got.String(), got.Password())
		}
	}
	// The whole nameplate range edges.
	for _, in := range []string{"1-aardvark-adroitness", "99999-zulu-yucatan"} {
		if c, err := Parse(in); err != nil || c.String() != in {
			t.Errorf("Parse(%q) = %v, %v", in, c, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in         string
		kind       ErrorKind
		pos        int
		input      string
		suggestion string
		msg        string // substring of Error()
	}{
		{"", ErrEmpty, 0, "", "", "empty"},
		{"   \t\n", ErrEmpty, 0, "", "", "empty"},
		{" - -- ", ErrEmpty, 0, "", "", "empty"},
		{"0-tiger-tomorrow", ErrNameplate, 0, "0", "", "1 or more"},
		{"00-tiger-tomorrow", ErrNameplate, 0, "00", "", "1 or more"},
		{"07-tiger-tomorrow", ErrNameplate, 0, "07", "", "start with 0"},
		{"123456-tiger-tomorrow", ErrNameplate, 0, "123456", "", "more than 5 digits"},
		{"1000000", ErrNameplate, 0, "1000000", "", "more than 5 digits"},
		{"7a-tiger-tomorrow", ErrNameplate, 0, "7a", "", "digits only"},
		{"x7-tiger-tomorrow", ErrNameplate, 0, "x7", "", "digits only"},
		{"tiger-tomorrow", ErrNameplate, 0, "tiger", "", "must start with its number"},
		{"Tiger-tomorrow", ErrNameplate, 0, "Tiger", "", `"Tiger"`},
		{"7", ErrWordCount, 1, "", "", "found 0"},
		{"7-", ErrWordCount, 1, "", "", "found 0"},
		{"7-tiger", ErrWordCount, 2, "", "", "found 1"},
		{"7 tomorrow", ErrWordCount, 2, "", "", "found 1"},
		{"7-tiger-tomorrow-tiger", ErrWordCount, 3, "tiger", "", `"tiger" is extra`},
		{"7-tiger-tomorrow-a-b", ErrWordCount, 3, "a-b", "", "4 words"},
		{"7-tigr-tomorrow", ErrUnknownWord, 1, "tigr", "tiger", `"tigr" is not a word in the list; did you mean "tiger"?`},
		{"7-Tigre-tomorrow", ErrUnknownWord, 1, "Tigre", "tiger", `did you mean "tiger"?`},
		{"7-tiger-tomorow", ErrUnknownWord, 2, "tomorow", "tomorrow", `did you mean "tomorrow"?`},
		{"7-aardvark-gutarist", ErrUnknownWord, 2, "gutarist", "guitarist", `did you mean "guitarist"?`},
		{"7-tiger-xyzzyplugh", ErrUnknownWord, 2, "xyzzyplugh", "", `"xyzzyplugh" is not a word in the list`},
		{"7-guitar-tomorrow", ErrUnknownWord, 1, "guitar", "", `"guitar" is not a word in the list`},
		{"7-tigr-tomorow", ErrUnknownWord, 1, "tigr", "tiger", ""},
		// Suggestions come from the expected position's list only:
		// "tomorow" is one edit from the odd word "tomorrow" but there is
		// no even word near it.
		{"7-tomorow-tomorrow", ErrUnknownWord, 1, "tomorow", "", ""},
		{"7-tomorrow-tiger", ErrWrongPosition, 1, "tomorrow", "", `word 1 "tomorrow" belongs in position 2: were the words swapped?`},
		{"7-tomorrow-Tomorrow", ErrWrongPosition, 1, "tomorrow", "", "left out or repeated"},
		{"7-tiger-tiger", ErrWrongPosition, 2, "tiger", "", `word 2 "tiger" belongs in position 1: was a word left out or repeated?`},
		{"7-tomorrow-tigr", ErrWrongPosition, 1, "tomorrow", "", "left out or repeated"},
		{"7-ti9er-tomorrow", ErrUnknownWord, 1, "ti9er", "tiger", ""},
		{"7-\u212Aiwi-tomorrow", ErrUnknownWord, 1, "\u212Aiwi", "", ""}, // Kelvin sign does not fold to k
	} {
		_, err := Parse(tc.in)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error = %v, want *ParseError", tc.in, err)
			continue
		}
		if pe.Kind != tc.kind || pe.Pos != tc.pos || pe.Input != tc.input || pe.Suggestion != tc.suggestion {
			t.Errorf("Parse(%q) = {%v pos %d input %q suggestion %q}, want {%v pos %d input %q suggestion %q}",
				tc.in, pe.Kind, pe.Pos, pe.Input, pe.Suggestion, tc.kind, tc.pos, tc.input, tc.suggestion)
		}
		if !strings.Contains(pe.Error(), tc.msg) {
			t.Errorf("Parse(%q) message %q, want it to contain %q", tc.in, pe.Error(), tc.msg)
		}
	}
}

func TestErrorKindString(t *testing.T) {
	for k, want := range map[ErrorKind]string{
		ErrEmpty: "ErrEmpty", ErrNameplate: "ErrNameplate", ErrWordCount: "ErrWordCount",
		ErrUnknownWord: "ErrUnknownWord", ErrWrongPosition: "ErrWrongPosition", 0: "ErrorKind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
}

func TestSuggestEveryWordTypo(t *testing.T) {
	// Dropping any one letter of a list word (long enough to be
	// unambiguous) must still be caught as a typo with some suggestion in
	// the right list.
	for pos, list := range []*[256]string{&evenWords, &oddWords} {
		for _, w := range list {
			typo := w[:len(w)-1]
			if _, _, ok := WordIndex(typo); ok {
				continue
			}
			s := suggest(typo, pos == 0)
			if s == "" {
				t.Errorf("no suggestion for %q (from %q)", typo, w)
				continue
			}
			if _, even, _ := WordIndex(s); even != (pos == 0) {
				t.Errorf("suggestion %q for %q from the wrong list", s, typo)
			}
		}
	}
}

func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want []string
	}{
		{"7-ch", -1, []string{"7-chairlift", "7-chatter", "7-checkup", "7-chisel", "7-choking", "7-chopper", "7-christmas"}},
		{"7-ch", 3, []string{"7-chairlift", "7-chatter", "7-checkup"}},
		{"7 CH", 2, []string{"7-chairlift", "7-chatter"}},
		{"  7  -ch", 1, []string{"7-chairlift"}},
		{"7-snap", 10, []string{"7-snapline", "7-snapshot"}},
		{"7-tiger", 10, []string{"7-tiger"}},
		// Second position: only odd words, with the first word in
		// canonical form.
		{"7-tiger-to", 10, []string{"7-tiger-tobacco", "7-tiger-tolerance", "7-tiger-tomorrow", "7-tiger-torpedo"}},
		{"7 Tiger TO", 2, []string{"7-tiger-tobacco", "7-tiger-tolerance"}},
		{"7--tiger--tom", 10, []string{"7-tiger-tomorrow"}},
		{"7-tiger-ap", 10, []string{"7-tiger-apollo", "7-tiger-applicant"}}, // sorted, unlike the list
		// "ti" starts even words only; in the second position it offers
		// nothing, and "tob" (odd) offers nothing first.
		{"7-tiger-ti", 10, nil},
		{"7-tob", 10, nil},
		// Trailing separator: the part is finished.
		{"7-", 3, []string{"7-aardvark", "7-absurd", "7-accrue"}},
		{"7 ", 1, []string{"7-aardvark"}},
		{"7-tiger-", 2, []string{"7-tiger-adroitness", "7-tiger-adviser"}},
		{"7 tiger ", 1, []string{"7-tiger-adroitness"}},
		{"7-tig ", 5, nil}, // "tig" was ended but is not a word
		{"7-tiger-tomorrow", 10, nil},
		{"7-tiger-tomorrow ", 10, nil},
		{"7-tiger-tomorrow-", 10, nil},
		{"7-tiger-tomorrow-x", 10, nil},
		// Nameplate not finished, invalid, or missing.
		{"", 10, nil},
		{"   ", 10, nil},
		{"7", 10, nil},
		{"0-ti", 10, nil},
		{"07-ti", 10, nil},
		{"123456-ti", 10, nil},
		{"tiger-to", 10, nil},
		// Earlier word wrong or unknown.
		{"7-tomorrow-to", 10, nil},
		{"7-tigr-to", 10, nil},
		{"7-xq", 10, nil},
		{"7-ti9", 10, nil},
		// max == 0 offers nothing.
		{"7-ch", 0, nil},
	} {
		got := Complete(tc.in, tc.max)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Complete(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
	if got := Complete("7-", -1); len(got) != 256 || !slices.IsSorted(got) {
		t.Errorf("Complete(7-, -1): %d entries, sorted %v", len(got), slices.IsSorted(got))
	}
	if got := Complete("7-tiger-", -1); len(got) != 256 || !slices.IsSorted(got) {
		t.Errorf("Complete(7-tiger-, -1): %d entries, sorted %v", len(got), slices.IsSorted(got))
	}
}

// TestCompleteParses checks every completion of a second word parses, and
// every completion of a first word is a valid start.
func TestCompleteParses(t *testing.T) {
	for _, c := range Complete("42 Tiger ", -1) {
		if _, err := Parse(c); err != nil {
			t.Errorf("completion %q does not parse: %v", c, err)
		}
	}
	for _, c := range Complete("42-", -1) {
		if got := Complete(c+"-", 1); len(got) != 1 {
			t.Errorf("completion %q is not a valid start: %q", c, got)
		}
	}
}

var fuzzSeeds = []string{
	"7-tiger-tomorrow",
	"7 Tiger  tomorrow",
	" 99999-zulu-yucatan\n",
	"1-aardvark-adroitness",
	"7\u2013tiger\u2014tomorrow",
	"",
	"-",
	"0-tiger-tomorrow",
	"07-tiger-tomorrow",
	"123456-tiger-tomorrow",
	"abc-tiger-tomorrow",
	"7",
	"7-tiger",
	"7-tiger-tomorrow-tiger",
	"7-tigr-tomorrow",
	"7-tomorrow-tiger",
	"7-tiger-tiger",
	"7-\u212Aiwi-tomorrow",
	"7-\xff\xfe-tomorrow",
}

// roundTrip checks what parse made of in, v: its canonical form (format)
// parses back to v, and formats to itself again.
func roundTrip[T comparable](t *testing.T, in string, v T, parse func(string) (T, error), format func(T) string) {
	t.Helper()
	out := format(v)
	v2, err := parse(out)
	if err != nil {
		t.Fatalf("%q parsed as %+v, but its canonical form %q does not parse: %v", in, v, out, err)
	}
	if v2 != v {
		t.Fatalf("%q parsed as %+v, its canonical form %q as %+v", in, v, out, v2)
	}
	if format(v2) != out {
		t.Fatalf("canonical form not stable: %q then %q", out, format(v2))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T is not a *ParseError", s, err)
			}
			if pe.Error() == "" {
				t.Fatalf("Parse(%q): empty message", s)
			}
			return
		}
		roundTrip(t, s, c, Parse, Code.String)
		if string(c.Password()) != c.Words[0]+"-"+c.Words[1] {
			t.Fatalf("Password %q for %+v", c.Password(), c)
		}
	})
}

func FuzzComplete(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, 5)
		if len(s) > 2 {
			f.Add(s[:len(s)-2], -1)
		}
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		got := Complete(s, max)
		if max >= 0 && len(got) > max {
			t.Fatalf("Complete(%q, %d) gave %d entries", s, max, len(got))
		}
		if !slices.IsSorted(got) {
			t.Fatalf("Complete(%q, %d) not sorted: %q", s, max, got)
		}
		for _, c := range got {
			parts := strings.Split(c, "-")
			if len(parts) != 2 && len(parts) != 3 {
				t.Fatalf("Complete(%q) gave %q", s, c)
			}
			if len(parts) == 3 {
				if _, err := Parse(c); err != nil {
					t.Fatalf("Complete(%q) gave %q, which does not parse: %v", s, c, err)
				}
			}
		}
	})
}
