package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// hostileText has what a terminal must not be handed: an escape sequence
// that paints, one that retitles the window, a lone CR, a bidi override.
const hostileText = "hello \x1b[31mred\x1b[0m\r\n\x1b]0;owned\x07title\rover \u202eevil\u202c ✓\n"

// neutralisedText is hostileText as `ferry receive` prints it (see
// cli.Neutralise): written out here, not computed, so the binary is
// checked against the documented rule.
const neutralisedText = "hello \uFFFD[31mred\uFFFD[0m\n\uFFFD]0;owned\uFFFDtitle\uFFFDover \uFFFDevil\uFFFD ✓\n"

// TestSendTextJSON: `ferry send --text` to `ferry receive --yes --json`:
// the offer says it is a text of its length, the text event carries it
// exactly, and nothing is written to the download folder.
func TestSendTextJSON(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	out := t.TempDir()
	send := startFerry(t, addr, "send", "--text", hostileText)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	recv := startFerry(t, addr, "receive", "--yes", "--out", out, c.Code)
	if code := recv.wait(t); code != exitOK {
		t.Fatalf("receive exited %d; stderr:\n%s", code, recv.stderr.String())
	}
	if code := send.wait(t); code != exitOK {
		t.Fatalf("send exited %d; stderr:\n%s", code, send.stderr.String())
	}
	if o, ok := recv.find("offer"); !ok || o.Type != "text" || o.Bytes != int64(len(hostileText)) || o.Files != 0 {
		t.Errorf("offer event %+v, want a text of %d bytes", o, len(hostileText))
	}
	if e, ok := recv.find("text"); !ok || e.Text != hostileText {
		t.Errorf("text event %q, want %q", e.Text, hostileText)
	}
	for _, p := range []*ferryProc{send, recv} {
		if d, ok := p.find("done"); !ok || d.Bytes != int64(len(hostileText)) {
			t.Errorf("done event %+v", d)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("receiving a text wrote %d entries into the download folder", len(entries))
	}
}

// TestSendTextStdinHuman: `ferry send --text -` reads the text from
// standard input; a human-mode `ferry receive --yes` prints exactly the
// neutralised text on stdout, its messages on stderr.
func TestSendTextStdinHuman(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	cmd := exec.Command(ferryBinary, "send", "--json", "--no-lan", "--rendezvous", addr, "--listen", "127.0.0.1:0", "--text", "-")
	cmd.Stdin = strings.NewReader(hostileText)
	send := startFerryCmd(t, cmd)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })

	out := t.TempDir()
	recv := exec.Command(ferryBinary, "receive", "--yes", "--no-lan", "--rendezvous", addr, "--listen", "127.0.0.1:0", "--out", out, c.Code)
	var stdout, stderr bytes.Buffer
	recv.Stdout, recv.Stderr = &stdout, &stderr
	if err := recv.Run(); err != nil {
		t.Fatalf("receive: %v\nstderr:\n%s", err, stderr.String())
	}
	if code := send.wait(t); code != exitOK {
		t.Fatalf("send exited %d; stderr:\n%s", code, send.stderr.String())
	}
	if stdout.String() != neutralisedText {
		t.Errorf("stdout %q, want exactly %q", stdout.String(), neutralisedText)
	}
	if !strings.Contains(stderr.String(), "Offer: a text of 56 bytes") || !strings.Contains(stderr.String(), "Done: a text of 56 bytes") {
		t.Errorf("stderr does not tell the offer and the end:\n%s", stderr.String())
	}
	if strings.ContainsAny(stderr.String(), "\x1b\u202e") {
		t.Errorf("stderr has the raw text in it: %q", stderr.String())
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("receiving a text wrote %d entries into the download folder", len(entries))
	}
}

// TestSendTextUsageErrors: the real binary refuses --text with paths and a
// text over 1 MiB on standard input with the usage exit status, before
// any pairing (no server is needed to be told).
func TestSendTextUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"send", "--text", "hi", "file"}, "", "exclude each other"},
		{[]string{"send", "--text", "-"}, strings.Repeat("x", 1<<20+1), "longer than 1048576 bytes"},
		{[]string{"send", "--text", "-"}, "caf\xe9", "not valid UTF-8"},
	} {
		cmd := exec.Command(ferryBinary, tc.args...)
		cmd.Stdin = strings.NewReader(tc.stdin)
		cmd.Env = append(os.Environ(), "FERRY_RENDEZVOUS=")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), tc.want) {
			t.Errorf("%q: %v, want exit %d saying %q\n%s", tc.args, err, exitUsage, tc.want, out)
		}
	}
}
