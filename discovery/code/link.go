package code

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"
)

// A share link carries a code, and the rendezvous server it lives on, in
// one string a phone camera or a click can hand over:
//
//	ferry://receive/7-aardvark-adroitness
//	ferry://receive/7-aardvark-adroitness?rendezvous=ferry.example.org:7887
//
// ParseLink reads links from anywhere (a browser, a chat, a QR code), so it
// is strict and treats its input as hostile:
//   - the scheme is "ferry" and the host "receive" (ASCII case ignored, as
//     URLs do); no user, port, fragment or further path segments;
//   - the code is one path segment of ASCII letters, digits and single
//     dashes that Parse accepts and that is the code's canonical form up to
//     case, so no whitespace, percent-encoding or Unicode dashes;
//   - the only query parameter is "rendezvous", at most once, holding
//     HOST:PORT as ValidateRendezvous checks it (percent-encoding is
//     decoded there, since URL tools like to escape ':' and brackets);
//   - unknown query parameters are errors, not ignored: a later version may
//     add one that changes how to pair (say, relay only), and a link that
//     silently means less than its sender asked for is worse than one that
//     is refused with a message saying to update ferry.
const (
	// LinkScheme is the URL scheme of share links, registered with the
	// desktop as x-scheme-handler/ferry.
	LinkScheme = "ferry"
	// linkPrefix is everything before the code, in canonical form.
	linkPrefix = LinkScheme + "://receive/"
	// linkRendezvousKey is the query parameter naming the server.
	linkRendezvousKey = "rendezvous"
	// maxLinkLen bounds the input ParseLink looks at: a code is at most
	// about 30 bytes and a host name 253, so anything longer is not a link
	// ferry made.
	maxLinkLen = 512
	// maxHostLen is the longest DNS name (RFC 1035).
	maxHostLen = 253
)

// Link is a parsed share link: a code and, when the sender pairs through a
// rendezvous server, that server.
type Link struct {
	// Code is the share code.
	Code Code
	// Rendezvous is the sender's server as HOST:PORT, or "" when the
	// sender pairs on the local network only.
	Rendezvous string
}

// ErrNotLink is wrapped by ParseLink's errors when the input is not a
// ferry share link at all (wrong scheme or host), as opposed to a share
// link with a bad part.
var ErrNotLink = errors.New("not a ferry share link")

// NewLink makes the link for c on rendezvous (HOST:PORT, or "" for the
// local network). It fails if c is not a valid code or rendezvous is not
// valid for a link.
func NewLink(c Code, rendezvous string) (Link, error) {
	p, err := Parse(c.String())
	if err != nil {
		return Link{}, err
	}
	if rendezvous != "" {
		if err := ValidateRendezvous(rendezvous); err != nil {
			return Link{}, err
		}
	}
	return Link{Code: p, Rendezvous: rendezvous}, nil
}

// String formats the link canonically, e.g.
// "ferry://receive/7-aardvark-adroitness?rendezvous=ferry.example.org:7887".
// The server is written as it is, without percent-encoding: ':' is allowed
// in a URL query, and brackets of IPv6 literals are accepted by the URL
// handlers that matter (browsers, desktop launchers, phone cameras).
func (l Link) String() string {
	s := linkPrefix + l.Code.String()
	if l.Rendezvous != "" {
		s += "?" + linkRendezvousKey + "=" + l.Rendezvous
	}
	return s
}

// LooksLikeLink reports whether s is meant as a share link rather than a
// code: whether it starts, after surrounding whitespace, with "ferry:". A
// caller that gets true should use ParseLink and report its error, not
// fall back to Parse.
func LooksLikeLink(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) >= len(LinkScheme)+1 && strings.EqualFold(s[:len(LinkScheme)+1], LinkScheme+":")
}

// ParseLink reads a share link strictly (see the rules above Link) and
// returns it with the code in canonical form. Surrounding whitespace is
// ignored, as pasting often adds some. Errors are for people; a bad code
// wraps Parse's *ParseError and a wrong scheme or host wraps ErrNotLink.
func ParseLink(s string) (Link, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxLinkLen {
		return Link{}, fmt.Errorf("the link is too long (%d bytes; a share link has at most %d)", len(s), maxLinkLen)
	}
	if len(s) < len(linkPrefix) || !strings.EqualFold(s[:len(linkPrefix)], linkPrefix) {
		return Link{}, fmt.Errorf("%w: it must start with %q", ErrNotLink, linkPrefix)
	}
	rest := s[len(linkPrefix):]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return Link{}, errors.New("the link must not have a #fragment")
	}
	segment, query, hasQuery := strings.Cut(rest, "?")

	var l Link
	if err := checkLinkCode(segment); err != nil {
		return Link{}, err
	}
	c, err := Parse(segment)
	if err != nil {
		return Link{}, fmt.Errorf("the link's code is not valid: %w", err)
	}
	if !strings.EqualFold(c.String(), segment) {
		return Link{}, fmt.Errorf("the link's code must be written like \"7-aardvark-adroitness\"")
	}
	l.Code = c

	if !hasQuery {
		return l, nil
	}
	if query == "" {
		return Link{}, errors.New("the link ends in an empty query (\"?\")")
	}
	for _, param := range strings.Split(query, "&") {
		key, value, _ := strings.Cut(param, "=")
		if key != linkRendezvousKey {
			return Link{}, fmt.Errorf("the link has the unknown parameter %q (this version of ferry knows only %q; a newer one may be needed)",
				truncate(key, 40), linkRendezvousKey)
		}
		if l.Rendezvous != "" {
			return Link{}, fmt.Errorf("the link names the %s server twice", linkRendezvousKey)
		}
		v, err := url.PathUnescape(value)
		if err != nil {
			return Link{}, fmt.Errorf("the link's %s server is not valid: bad percent-encoding", linkRendezvousKey)
		}
		if v == "" {
			return Link{}, fmt.Errorf("the link's %s server is empty", linkRendezvousKey)
		}
		if err := ValidateRendezvous(v); err != nil {
			return Link{}, fmt.Errorf("the link's %s server is not valid: %w", linkRendezvousKey, err)
		}
		l.Rendezvous = v
	}
	return l, nil
}

// checkLinkCode accepts only what a canonical code can look like: ASCII
// letters, digits and dashes, so that Parse's leniency for typed codes
// (whitespace, Unicode dashes) does not carry over to links.
func checkLinkCode(s string) error {
	if s == "" {
		return errors.New("the link has no code after \"" + linkPrefix + "\"")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '-' && !('0' <= c && c <= '9') && !('a' <= c|0x20 && c|0x20 <= 'z') {
			if c == '/' {
				return errors.New("the link must have nothing after the code but \"?rendezvous=HOST:PORT\"")
			}
			r, _ := utf8.DecodeRuneInString(s[i:])
			return fmt.Errorf("the link's code has a character a code never has (%q)", r)
		}
	}
	return nil
}

// ValidateRendezvous checks a rendezvous server address: HOST:PORT where
// HOST is a DNS name (letters, digits, '-', '_' and '.') or an IP address
// (IPv6 in brackets, without a zone) and PORT a decimal number from 1 to
// 65535 without leading zeros. Nothing is trimmed or resolved.
func ValidateRendezvous(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("use HOST:PORT, e.g. ferry.example.org:7887")
	}
	if host == "" {
		return errors.New("the host is missing: use HOST:PORT")
	}
	if !validPort(port) {
		return errors.New("the port must be a number from 1 to 65535")
	}
	if net.JoinHostPort(host, port) != s {
		// Brackets around a name, or an IPv6 address without them.
		return errors.New("use HOST:PORT, with an IPv6 address in brackets: [2001:db8::1]:7887")
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("%q is not an IPv6 address (zones such as %%eth0 are not allowed)", truncate(host, 60))
		}
		return nil
	}
	if !validHostName(host) {
		return fmt.Errorf("%q is not a host name or IP address", truncate(host, 60))
	}
	return nil
}

// validPort reports whether s is a decimal port in 1..65535 with no sign
// or leading zero.
func validPort(s string) bool {
	if s == "" || len(s) > 5 || s[0] == '0' || !allDigits(s) {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

// validHostName reports whether s is made of dot-separated labels of ASCII
// letters, digits, '-' and '_' (which some private DNS names use), none
// empty or starting or ending with '-', at most 253 bytes in all. IPv4
// addresses pass as names of digits.
func validHostName(s string) bool {
	if len(s) > maxHostLen {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c != '-' && c != '_' && !('0' <= c && c <= '9') && !('a' <= c|0x20 && c|0x20 <= 'z') {
				return false
			}
		}
	}
	return true
}

// truncate shortens hostile input quoted in an error message to at most n
// bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
