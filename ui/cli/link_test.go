package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"ferry/discovery/code"
	"ferry/transfer"
	"ferry/ui/qr"
)

const (
	linkCode = "7-tiger-tomorrow"
	linkRV   = "rv.example:7887"
	linkWant = "ferry://receive/7-tiger-tomorrow?rendezvous=rv.example:7887"
)

func TestJSONCodeEventCarriesLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []SinkOption
		line string
	}{
		{"with a server", []SinkOption{WithLink(linkRV)}, `{"event":"code","code":"7-tiger-tomorrow","link":"` + linkWant + `"}`},
		{"local network", []SinkOption{WithLink("")}, `{"event":"code","code":"7-tiger-tomorrow","link":"ferry://receive/7-tiger-tomorrow"}`},
		{"no link asked for", nil, `{"event":"code","code":"7-tiger-tomorrow"}`},
		{"a server that cannot go in a link", []SinkOption{WithLink("not a server")}, `{"event":"code","code":"7-tiger-tomorrow"}`},
	} {
		var out bytes.Buffer
		NewJSONSink(&out, tc.opts...)(transfer.Event{Kind: transfer.EventCode, Code: linkCode})
		if got := strings.TrimSuffix(out.String(), "\n"); got != tc.line {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.line)
		}
	}
}

func TestHumanSinkPrintsLinkAndQR(t *testing.T) {
	q, err := qr.Encode(linkWant)
	if err != nil {
		t.Fatal(err)
	}
	for _, ansi := range []bool{true, false} {
		var out bytes.Buffer
		sink, finish := NewHumanSink(&out, false, WithLink(linkRV), WithQR(ansi))
		sink(transfer.Event{Kind: transfer.EventCode, Code: linkCode})
		finish()
		want := "Code: " + linkCode + "\nLink: " + linkWant + "\n" + q.Text(ansi) + "On the other computer run:"
		if !strings.HasPrefix(out.String(), want) {
			t.Errorf("ansi=%v: output\n%s\nwant it to start with\n%s", ansi, out.String(), want)
		}
		if hasEsc := strings.Contains(out.String(), "\x1b["); hasEsc != ansi {
			t.Errorf("ansi=%v: output has escapes: %v", ansi, hasEsc)
		}
	}

	var out bytes.Buffer
	sink, _ := NewHumanSink(&out, false, WithLink(linkRV))
	sink(transfer.Event{Kind: transfer.EventCode, Code: linkCode})
	if strings.Contains(out.String(), "Link:") || strings.ContainsRune(out.String(), '█') {
		t.Errorf("without WithQR the human output shows the link or a QR code:\n%s", out.String())
	}

	out.Reset()
	sink, _ = NewHumanSink(&out, false, WithLink("bad"), WithQR(false))
	sink(transfer.Event{Kind: transfer.EventCode, Code: linkCode})
	if !strings.Contains(out.String(), "\nNo link: ") || strings.ContainsRune(out.String(), '█') {
		t.Errorf("a server unfit for a link: output\n%s\nwant a \"No link:\" line and no QR code", out.String())
	}
}

func TestQRANSI(t *testing.T) {
	env := func(tty bool, noColor string) Env {
		return Env{StdoutTTY: tty, Getenv: func(k string) string {
			if k == "NO_COLOR" {
				return noColor
			}
			return ""
		}}
	}
	if got := qrANSI(env(true, "")); got != useANSI {
		t.Errorf("on a terminal: %v, want %v", got, useANSI)
	}
	if qrANSI(env(false, "")) {
		t.Error("escapes off a terminal")
	}
	if qrANSI(env(true, "1")) {
		t.Error("escapes despite NO_COLOR")
	}
}

func TestCodeFromLink(t *testing.T) {
	for _, tc := range []struct {
		name     string
		raw      string
		flagRV   string
		explicit bool
		wantRV   string
		say      string
	}{
		{"a code", linkCode, "env.example:1", false, "env.example:1", ""},
		{"a link's server wins over the default", linkWant, "env.example:1", false, linkRV, "Rendezvous server: rv.example:7887 (from the link)"},
		{"--rendezvous wins over the link", linkWant, "mine.example:1", true, "mine.example:1", "from --rendezvous; the link names rv.example:7887"},
		{"a link without a server keeps the default", "ferry://receive/7-tiger-tomorrow", "env.example:1", false, "env.example:1", "the link names none"},
		{"a link without a server, no default", "ferry://receive/7-tiger-tomorrow", "", false, "", "pairing on the local network"},
	} {
		c := common{rendezvous: tc.flagRV}
		var stderr bytes.Buffer
		got, err := c.codeFrom(tc.raw, tc.explicit, &stderr)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.String() != linkCode {
			t.Errorf("%s: code %q, want %q", tc.name, got, linkCode)
		}
		if c.rendezvous != tc.wantRV {
			t.Errorf("%s: server %q, want %q", tc.name, c.rendezvous, tc.wantRV)
		}
		if tc.say == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tc.say) {
			t.Errorf("%s: said %q, want %q", tc.name, stderr.String(), tc.say)
		}
		if strings.Contains(stderr.String(), linkCode) {
			t.Errorf("%s: the code is written to stderr: %q", tc.name, stderr.String())
		}
	}
}

func TestCodeFromBadLink(t *testing.T) {
	c := common{rendezvous: "env.example:1"}
	var stderr bytes.Buffer
	_, err := c.codeFrom("ferry://receive/7-tiger-tomorrow?rendezvous=evil:1&relay=only", false, &stderr)
	var te *transfer.Error
	if !errors.As(err, &te) || te.Kind != transfer.KindBadCode || !strings.Contains(err.Error(), `unknown parameter "relay"`) {
		t.Fatalf("error %v, want a bad-code error about the parameter", err)
	}
	if c.rendezvous != "env.example:1" || stderr.Len() != 0 {
		t.Errorf("a refused link changed the server to %q or said %q", c.rendezvous, stderr.String())
	}
}

// TestReceiveTakesLink: a link on the command line is read like a code: a
// bad one is refused before anything connects, and a good one's server
// satisfies the flags that need one.
func TestReceiveTakesLink(t *testing.T) {
	var stderr bytes.Buffer
	env := Env{Stderr: &stderr, Stdout: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	if got := Receive(context.Background(), []string{"ferry://receive/7-guitar"}, env); got != ExitFailure {
		t.Errorf("a bad link: exit %d, want %d", got, ExitFailure)
	}
	if !strings.Contains(stderr.String(), "the link's code is not valid") {
		t.Errorf("a bad link: stderr %q", stderr.String())
	}

	c := common{relayOnly: true}
	if msg := c.check(); msg == "" {
		t.Fatal("--relay-only without a server passes the check")
	}
	if _, err := c.codeFrom(linkWant, false, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if msg := c.check(); msg != "" {
		t.Errorf("--relay-only with the link's server: %s", msg)
	}
}

// The link the CLI prints is the one code.ParseLink reads back.
func TestPrintedLinkParses(t *testing.T) {
	link, err := sinkOptions{withLink: true, rendezvous: "[2001:db8::1]:7887"}.link(linkCode)
	if err != nil {
		t.Fatal(err)
	}
	l, err := code.ParseLink(link)
	if err != nil || l.Code.String() != linkCode || l.Rendezvous != "[2001:db8::1]:7887" {
		t.Errorf("ParseLink(%q) = %+v, %v", link, l, err)
	}
}

func TestSendKnowsQRFlag(t *testing.T) {
	var stderr bytes.Buffer
	env := Env{Stderr: &stderr, Stdout: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	if got := Send(context.Background(), []string{"--qr"}, env); got != ExitUsage {
		t.Errorf("exit %d, want %d", got, ExitUsage)
	}
	if s := stderr.String(); strings.Contains(s, "not defined") || !strings.Contains(s, "-qr") {
		t.Errorf("--qr is not a documented flag of send: %q", s)
	}
}
