package code

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLinkAccepts(t *testing.T) {
	tiger := Code{Nameplate: "7", Words: [2]string{"tiger", "tomorrow"}}
	for _, tc := range []struct {
		in   string
		want Link
	}{
		{"ferry://receive/7-tiger-tomorrow", Link{Code: tiger}},
		{"  ferry://receive/7-tiger-tomorrow\n", Link{Code: tiger}},
		{"FERRY://Receive/7-Tiger-TOMORROW", Link{Code: tiger}},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=ferry.example.org:7887", Link{Code: tiger, Rendezvous: "ferry.example.org:7887"}},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=192.0.2.1:1", Link{Code: tiger, Rendezvous: "192.0.2.1:1"}},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=[2001:db8::1]:65535", Link{Code: tiger, Rendezvous: "[2001:db8::1]:65535"}},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=%5B2001:db8::1%5D%3A7887", Link{Code: tiger, Rendezvous: "[2001:db8::1]:7887"}},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=my_host.lan:7887", Link{Code: tiger, Rendezvous: "my_host.lan:7887"}},
		{"ferry://receive/99999-zulu-yucatan", Link{Code: Code{Nameplate: "99999", Words: [2]string{"zulu", "yucatan"}}}},
	} {
		got, err := ParseLink(tc.in)
		if err != nil {
			t.Errorf("ParseLink(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseLink(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseLinkRejects(t *testing.T) {
	for _, tc := range []struct {
		in, msg string // msg: a part of the error message
	}{
		{"", "must start with"},
		{"https://receive/7-tiger-tomorrow", "must start with"},
		{"ferry://send/7-tiger-tomorrow", "must start with"},
		{"ferry:receive/7-tiger-tomorrow", "must start with"},
		{"ferry://user@receive/7-tiger-tomorrow", "must start with"},
		{"ferry://receive:80/7-tiger-tomorrow", "must start with"},
		{"ferry://receive/", "no code"},
		{"ferry://receive/?rendezvous=h:1", "no code"},
		{"ferry://receive/7-tiger-tomorrow/", "nothing after the code"},
		{"ferry://receive/7-tiger-tomorrow/x", "nothing after the code"},
		{"ferry://receive/7-tiger-tomorrow#x", "fragment"},
		{"ferry://receive/7%2Dtiger-tomorrow", "never has ('%')"},
		{"ferry://receive/7 tiger tomorrow", "never has (' ')"},
		{"ferry://receive/7\u2013tiger\u2013tomorrow", "never has ('–')"},
		{"ferry://receive/7--tiger-tomorrow", "written like"},
		{"ferry://receive/-7-tiger-tomorrow", "written like"},
		{"ferry://receive/7-tiger-tomorrow-", "written like"},
		{"ferry://receive/0-tiger-tomorrow", "not a valid code number"},
		{"ferry://receive/7-tiger", "needs 2 words"},
		{"ferry://receive/7-tomorrow-tiger", "swapped"},
		{"ferry://receive/7-tigr-tomorrow", "did you mean"},
		{"ferry://receive/7-tiger-tomorrow?", "empty query"},
		{"ferry://receive/7-tiger-tomorrow?relay=only", `unknown parameter "relay"`},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=h:1&relay=only", `unknown parameter "relay"`},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=h:1&", `unknown parameter ""`},
		{"ferry://receive/7-tiger-tomorrow?Rendezvous=h:1", `unknown parameter "Rendezvous"`},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=h:1&rendezvous=h:1", "twice"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous", "empty"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=", "empty"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=%zz", "percent-encoding"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=host", "HOST:PORT"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=:7887", "host is missing"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=host:0", "port"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=host:65536", "port"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=host:+80", "port"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=host:080", "port"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=evil%0Ahost:80", "not a host name"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=a+b:80", "not a host name"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=-host:80", "not a host name"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=host..lan:80", "not a host name"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=[host]:80", "brackets"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=[fe80::1%25eth0]:80", "zones"},
		{"ferry://receive/7-tiger-tomorrow?rendezvous=" + strings.Repeat("a", 600) + ":1", "too long"},
	} {
		l, err := ParseLink(tc.in)
		if err == nil {
			t.Errorf("ParseLink(%q) = %+v, want an error", tc.in, l)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseLink(%q) error %q, want it to mention %q", tc.in, err, tc.msg)
		}
	}
}

func TestParseLinkErrorKinds(t *testing.T) {
	if _, err := ParseLink("https://example.org/"); !errors.Is(err, ErrNotLink) {
		t.Errorf("a web URL: error %v does not wrap ErrNotLink", err)
	}
	_, err := ParseLink("ferry://receive/7-tigr-tomorrow")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Kind != ErrUnknownWord || pe.Suggestion != "tiger" {
		t.Errorf("a typo in the code: error %v, want a *ParseError suggesting \"tiger\"", err)
	}
	if errors.Is(err, ErrNotLink) {
		t.Error("a link with a bad code is reported as not a link")
	}
}

func TestLinkRoundTrip(t *testing.T) {
	for _, rv := range []string{"", "ferry.example.org:7887", "192.0.2.1:1", "[2001:db8::1]:65535", "localhost:7887"} {
		for _, b := range [][2]byte{{0, 0}, {0x80, 0x7f}, {0xff, 0xff}} {
			c := Code{Nameplate: "12345", Words: [2]string{evenWords[b[0]], oddWords[b[1]]}}
			l, err := NewLink(c, rv)
			if err != nil {
				t.Fatalf("NewLink(%v, %q): %v", c, rv, err)
			}
			s := l.String()
			want := "ferry://receive/" + c.String()
			if rv != "" {
				want += "?rendezvous=" + rv
			}
			if s != want {
				t.Errorf("String() = %q, want %q", s, want)
			}
			got, err := ParseLink(s)
			if err != nil {
				t.Fatalf("ParseLink(%q): %v", s, err)
			}
			if got != l {
				t.Errorf("ParseLink(%q) = %+v, want %+v", s, got, l)
			}
		}
	}
}

func TestNewLinkRejects(t *testing.T) {
	good := Code{Nameplate: "7", Words: [2]string{"tiger", "tomorrow"}}
	for _, tc := range []struct {
		c  Code
		rv string
	}{
		{Code{}, ""},
		{Code{Nameplate: "7", Words: [2]string{"tomorrow", "tiger"}}, ""},
		{Code{Nameplate: "7", Words: [2]string{"tiger", "x/y"}}, ""},
		{good, "host"},
		{good, " host:1"},
		{good, "host:1?x=y"},
	} {
		if l, err := NewLink(tc.c, tc.rv); err == nil {
			t.Errorf("NewLink(%+v, %q) = %q, want an error", tc.c, tc.rv, l)
		}
	}
	l, err := NewLink(Code{Nameplate: "7", Words: [2]string{"Tiger", "TOMORROW"}}, "")
	if err != nil || l.Code != good {
		t.Errorf("NewLink with upper case words = %+v, %v; want the canonical code", l, err)
	}
}

func TestLooksLikeLink(t *testing.T) {
	for s, want := range map[string]bool{
		"ferry://receive/7-tiger-tomorrow": true,
		" FERRY:anything":                  true,
		"ferry:":                           true,
		"ferry":                            false,
		"7-tiger-tomorrow":                 false,
		"https://example.org":              false,
		"":                                 false,
	} {
		if got := LooksLikeLink(s); got != want {
			t.Errorf("LooksLikeLink(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidateRendezvous(t *testing.T) {
	for s, ok := range map[string]bool{
		"host:7887": true, "[::1]:7887": true, "192.0.2.1:1": true, "a-b.c_d.example:65535": true,
		"": false, "host": false, "host:": false, ":7887": false, "host:0": false, "host:70000": false,
		"host:x": false, " host:1": false, "::1:80": false, "[::1%lo]:80": false, "a/b:1": false,
		strings.Repeat("a.", 127) + "a:1": false, strings.Repeat("a", 64) + ":1": false,
	} {
		if err := ValidateRendezvous(s); (err == nil) != ok {
			t.Errorf("ValidateRendezvous(%q) = %v", s, err)
		}
	}
}

// linkSeeds are the fuzz corpus: valid links of every shape and near
// misses of each rule.
var linkSeeds = []string{
	"ferry://receive/7-tiger-tomorrow",
	"ferry://receive/7-tiger-tomorrow?rendezvous=ferry.example.org:7887",
	"ferry://receive/7-tiger-tomorrow?rendezvous=[2001:db8::1]:7887",
	"ferry://receive/7-tiger-tomorrow?rendezvous=%5B::1%5D%3A7887",
	"FERRY://RECEIVE/99999-ZULU-YUCATAN",
	"ferry://receive/7-tiger-tomorrow?rendezvous=h:1&rendezvous=h:1",
	"ferry://receive/7-tiger-tomorrow?x=y",
	"ferry://receive/7-tiger-tomorrow#frag",
	"ferry://receive/7-tiger-tomorrow/",
	"ferry://receive/7\u2013tiger-tomorrow",
	"ferry://receive/7-tiger-tomorrow?rendezvous=[fe80::1%25eth0]:80",
	"ferry://receive/7-tiger-tomorrow?rendezvous=host:+80",
	"ferry://user@receive/7-tiger-tomorrow",
	"ferry:",
	"",
}

// FuzzParseLink checks that ParseLink never panics, that what it accepts
// formats to a link it accepts again as the same value, and that the
// canonical form is stable.
func FuzzParseLink(f *testing.F) {
	for _, s := range linkSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLink(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseLink(%q): empty message", s)
			}
			return
		}
		if !LooksLikeLink(s) {
			t.Fatalf("ParseLink accepted %q, which LooksLikeLink denies", s)
		}
		roundTrip(t, s, l, ParseLink, Link.String)
		if _, err := NewLink(l.Code, l.Rendezvous); err != nil {
			t.Fatalf("NewLink refuses what ParseLink(%q) gave: %v", s, err)
		}
	})
}
