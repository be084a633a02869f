// Package code owns ferry's share codes: the short strings like
// "7-aardvark-adroitness" that two people read aloud or paste into a chat to
// pair their machines.
//
// A code is NAMEPLATE-WORD-WORD. The nameplate is a decimal number
// (1..99999, no leading zeros) allocated by the rendezvous server; it is
// public and only says which mailbox to meet in. The two words are the
// password: they never leave the two machines and are fed to the PAKE via
// [Code.Password]. The words come from the PGP word list (see wordlist.go and
// WORDLIST.md): the first from the 256 two-syllable "even" words, the second
// from the 256 three-syllable "odd" words, each encoding one random byte.
// Because the lists are disjoint, a dropped, doubled or swapped word shows up
// as a word in the wrong position and is reported as a typo rather than
// surfacing later as a failed key exchange.
//
// The package formats ([Code.String]), makes ([New]), parses and validates
// ([Parse], whose errors are typed [*ParseError] values a UI can point at)
// and completes ([Complete]) codes, and writes and strictly reads share links
// ("ferry://receive/CODE?rendezvous=HOST:PORT", [Link], [ParseLink]; see
// link.go). It does no networking and no cryptography beyond drawing the
// random words.
package code

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameplate is the largest nameplate a code may carry.
const MaxNameplate = 99999

// maxNameplateDigits is the number of digits in MaxNameplate.
const maxNameplateDigits = 5

// maxSuggestDistance is the largest Levenshtein distance at which Parse still
// suggests a word for an unknown one.
const maxSuggestDistance = 2

// Code is a parsed share code.
type Code struct {
	// Nameplate is the rendezvous mailbox number in decimal digits, e.g. "7".
	Nameplate string
	// Words is the password, lowercase: Words[0] from the even list,
	// Words[1] from the odd list.
	Words [2]string
}

// New makes a code for nameplate with two random words drawn with
// crypto/rand: one byte picks the even word, one the odd word. That is 16
// bits of password entropy; with the rendezvous server allowing one guess per
// nameplate, an attacker's chance is 1/65536. It returns a *ParseError of
// kind ErrNameplate if nameplate is not a valid nameplate.
func New(nameplate string) (Code, error) {
	if err := checkNameplate(nameplate); err != nil {
		return Code{}, err
	}
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Code{}, fmt.Errorf("code: reading random bytes: %w", err)
	}
	return Code{
		Nameplate: nameplate,
		Words:     [2]string{evenWords[b[0]], oddWords[b[1]]},
	}, nil
}

// String formats the code canonically, e.g. "7-aardvark-adroitness".
func (c Code) String() string {
	return c.Nameplate + "-" + lowerASCII(c.Words[0]) + "-" + lowerASCII(c.Words[1])
}

// Password returns the words as the PAKE password in canonical form:
// lowercase and joined by '-', e.g. "aardvark-adroitness". The nameplate is
// not part of it. Both peers derive the same bytes from any spelling Parse
// accepts.
func (c Code) Password() []byte {
	return []byte(lowerASCII(c.Words[0]) + "-" + lowerASCII(c.Words[1]))
}

// ErrorKind says what is wrong with a code given to Parse.
type ErrorKind int

// The kinds of ParseError.
const (
	// ErrEmpty: the input holds nothing but whitespace and dashes.
	ErrEmpty ErrorKind = iota + 1
	// ErrNameplate: the first part is not a number in 1..99999 without
	// leading zeros.
	ErrNameplate
	// ErrWordCount: there are not exactly two words after the nameplate.
	ErrWordCount
	// ErrUnknownWord: a word is in neither word list.
	ErrUnknownWord
	// ErrWrongPosition: a word is from the other list than its position
	// needs, i.e. the words were swapped, or one was dropped or doubled.
	ErrWrongPosition
)

// String returns the kind's name, e.g. "ErrUnknownWord".
func (k ErrorKind) String() string {
	switch k {
	case ErrEmpty:
		return "ErrEmpty"
	case ErrNameplate:
		return "ErrNameplate"
	case ErrWordCount:
		return "ErrWordCount"
	case ErrUnknownWord:
		return "ErrUnknownWord"
	case ErrWrongPosition:
		return "ErrWrongPosition"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// ParseError reports why Parse rejected a code, precisely enough for a UI to
// highlight the offending part.
type ParseError struct {
	// Kind classifies the problem.
	Kind ErrorKind
	// Pos is the position of the offending part: 0 for the nameplate, 1 and
	// 2 for the first and second word. For ErrWordCount it is the position
	// of the first missing word (1 or 2) or, with too many parts, 3. For
	// ErrEmpty it is 0.
	Pos int
	// Input is the offending part as typed (original case), e.g. "gutar".
	// For ErrWordCount with too many parts it holds the extra parts joined
	// by '-'; with too few it is empty.
	Input string
	// Suggestion is the closest valid word for the position, for
	// ErrUnknownWord when one is within a small edit distance; otherwise
	// empty.
	Suggestion string
	// found is the number of words after the nameplate (for ErrWordCount).
	found int
	// swapped marks an ErrWrongPosition where both words are in each
	// other's place.
	swapped bool
}

// Error returns a message for a person, e.g.
// `"gutar" is not a word in the list; did you mean "guitarist"?`.
func (e *ParseError) Error() string {
	switch e.Kind {
	case ErrEmpty:
		return "the code is empty"
	case ErrNameplate:
		return nameplateMessage(e.Input)
	case ErrWordCount:
		if e.found < 2 {
			return fmt.Sprintf("the code needs 2 words after the number, found %d: a code looks like \"7-aardvark-adroitness\"", e.found)
		}
		return fmt.Sprintf("the code has %d words after the number, it needs 2: %q is extra", e.found, e.Input)
	case ErrUnknownWord:
		if e.Suggestion != "" {
			return fmt.Sprintf("%q is not a word in the list; did you mean %q?", e.Input, e.Suggestion)
		}
		return fmt.Sprintf("%q is not a word in the list", e.Input)
	case ErrWrongPosition:
		other := 3 - e.Pos
		if e.swapped {
			return fmt.Sprintf("word %d %q belongs in position %d: were the words swapped?", e.Pos, e.Input, other)
		}
		return fmt.Sprintf("word %d %q belongs in position %d: was a word left out or repeated?", e.Pos, e.Input, other)
	}
	return fmt.Sprintf("invalid code (%v)", e.Kind)
}

func nameplateMessage(s string) string {
	switch {
	case s != "" && allLetters(s):
		return fmt.Sprintf("the code must start with its number, e.g. \"7-...\"; it starts with %q", s)
	case !allDigits(s):
		return fmt.Sprintf("%q is not a valid code number: it must be digits only", s)
	case strings.Trim(s, "0") == "":
		return fmt.Sprintf("%q is not a valid code number: it must be 1 or more", s)
	case s[0] == '0':
		return fmt.Sprintf("%q is not a valid code number: it must not start with 0", s)
	case len(s) > maxNameplateDigits:
		return fmt.Sprintf("%q is not a valid code number: it has more than %d digits", s, maxNameplateDigits)
	}
	return fmt.Sprintf("%q is not a valid code number", s)
}

// Parse reads a code as a person typed or pasted it. It ignores case and
// surrounding whitespace, and accepts any run of dashes and/or whitespace
// between the parts (Unicode dashes such as an en dash count too), so
// "7 Aardvark  adroitness" and " 7-aardvark-adroitness\n" both parse. Errors
// are *ParseError; the first problem from left to right is reported.
func Parse(s string) (Code, error) {
	parts := split(s)
	if len(parts) == 0 {
		return Code{}, &ParseError{Kind: ErrEmpty}
	}
	if err := checkNameplate(parts[0]); err != nil {
		return Code{}, err
	}
	words := parts[1:]
	switch {
	case len(words) < 2:
		return Code{}, &ParseError{Kind: ErrWordCount, Pos: len(words) + 1, found: len(words)}
	case len(words) > 2:
		return Code{}, &ParseError{Kind: ErrWordCount, Pos: 3, Input: strings.Join(words[2:], "-"), found: len(words)}
	}
	var c Code
	c.Nameplate = parts[0]
	for i, w := range words {
		lw := lowerASCII(w)
		entry, ok := wordIndex[lw]
		if !ok {
			return Code{}, &ParseError{Kind: ErrUnknownWord, Pos: i + 1, Input: w, Suggestion: suggest(lw, i == 0)}
		}
		if entry.even != (i == 0) {
			e := &ParseError{Kind: ErrWrongPosition, Pos: i + 1, Input: w}
			if i == 0 {
				other, ok := wordIndex[lowerASCII(words[1])]
				e.swapped = ok && other.even
			}
			return Code{}, e
		}
		c.Words[i] = lw
	}
	return c, nil
}

// Complete returns the valid completions of the word being typed at the end
// of partial, in canonical form, sorted, at most max of them (all of them if
// max < 0). It normalises partial like Parse (case, whitespace, runs of
// separators), and knows the position: the first word is completed from the
// even list, the second from the odd list. For example "7-ch" gives
// ["7-chairlift", "7-chatter", "7-checkup", ...] and "7 Tiger Tom" gives
// ["7-tiger-tomorrow"].
//
// A trailing separator ends the current part, so "7-" offers first words and
// "7-tiger " offers second words. The result is empty while the nameplate is
// being typed, for an invalid prefix (a bad nameplate, an earlier word that is
// wrong for its position, a prefix that no word starts with, too many parts)
// and for a code that is already complete and valid. A fully typed first word
// is offered as its own completion.
func Complete(partial string, max int) []string {
	if max == 0 {
		return nil
	}
	partial = strings.TrimLeftFunc(partial, unicode.IsSpace)
	parts := split(partial)
	if len(parts) == 0 {
		return nil
	}
	var last string
	if r, _ := utf8.DecodeLastRuneInString(partial); !isSeparator(r) {
		last = parts[len(parts)-1]
		parts = parts[:len(parts)-1]
	}
	// parts now holds the finished parts; last is the part being typed.
	pos := len(parts)
	if pos == 0 || pos > 2 || checkNameplate(parts[0]) != nil {
		return nil
	}
	if _, err := Parse(partial); err == nil {
		return nil
	}
	prefix := parts[0] + "-"
	list := &evenWords
	if pos == 2 {
		first := lowerASCII(parts[1])
		if e, ok := wordIndex[first]; !ok || !e.even {
			return nil
		}
		prefix += first + "-"
		list = &oddWords
	}
	last = lowerASCII(last)
	var out []string
	for _, w := range list {
		if strings.HasPrefix(w, last) {
			out = append(out, prefix+w)
		}
	}
	slices.Sort(out)
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// WordIndex returns the byte value a word encodes and which list it is in
// (even is true for the even list, the first word of a code). The lookup
// ignores ASCII case. ok is false if w is in neither list.
func WordIndex(w string) (b byte, even bool, ok bool) {
	e, ok := wordIndex[lowerASCII(w)]
	return e.b, e.even, ok
}

type wordEntry struct {
	b    byte
	even bool
}

// wordIndex maps every lowercase word of both lists to its byte and list.
var wordIndex = func() map[string]wordEntry {
	m := make(map[string]wordEntry, 2*len(evenWords))
	for i := range evenWords {
		m[evenWords[i]] = wordEntry{b: byte(i), even: true}
		m[oddWords[i]] = wordEntry{b: byte(i), even: false}
	}
	return m
}()

// checkNameplate returns a *ParseError of kind ErrNameplate unless s is a
// decimal number in 1..MaxNameplate without leading zeros.
func checkNameplate(s string) error {
	if s == "" || len(s) > maxNameplateDigits || s[0] == '0' || !allDigits(s) {
		return &ParseError{Kind: ErrNameplate, Pos: 0, Input: s}
	}
	return nil
}

// isSeparator reports whether r separates the parts of a code: whitespace or
// a dash (ASCII hyphen-minus, or a Unicode dash or minus sign that chat apps
// and word processors substitute for it).
func isSeparator(r rune) bool {
	return r == '-' || unicode.IsSpace(r) || unicode.Is(unicode.Dash, r) || r == '\u2212'
}

// split breaks s into its parts, dropping separators at either end.
func split(s string) []string {
	return strings.FieldsFunc(s, isSeparator)
}

// lowerASCII lowercases ASCII letters only, so that no non-ASCII input can
// fold onto a list word (e.g. the Kelvin sign onto 'k').
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// suggest returns the word of the list for the position (even for the first
// word) closest to w, if its Levenshtein distance is at most
// maxSuggestDistance and less than len(w); ties go to the earlier word in
// byte order. It returns "" if there is none.
func suggest(w string, even bool) string {
	list := &oddWords
	if even {
		list = &evenWords
	}
	best, bestDist := "", maxSuggestDistance+1
	for _, cand := range list {
		if d := abs(len(cand) - len(w)); d >= bestDist {
			continue
		}
		if d := levenshtein(w, cand, bestDist); d < bestDist && d < len(w) {
			best, bestDist = cand, d
		}
	}
	return best
}

// levenshtein returns the edit distance between a and b in bytes, or any
// value >= limit once it is known to be at least limit.
func levenshtein(a, b string, limit int) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
