package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"ferry/transfer"
)

const (
	testServer = "rv.example:7887"
	testLink   = "ferry://receive/" + testCode + "?rendezvous=" + testServer
)

func TestSendShowsLinkAndQR(t *testing.T) {
	h := newHarness(t)
	h.w.settings.Rendezvous = testServer
	c, _ := h.dropFiles()
	v := h.w.send
	if v.link.Visible() || v.qr.Visible() || !v.copyLink.Disabled() {
		t.Fatal("a link, QR code or Copy link is shown before there is a code")
	}
	c.emit(transfer.Event{Kind: transfer.EventCode, Code: testCode})
	h.until("the link", func() bool { return v.link.Visible() })
	if v.link.Text != testLink {
		t.Errorf("link %q, want %q", v.link.Text, testLink)
	}
	if v.copyLink.Disabled() {
		t.Error("Copy link is disabled with a link")
	}
	if !v.qr.Visible() || v.qr.Image == nil {
		t.Fatal("no QR code beside the link")
	}
	if s := v.qr.MinSize(); s.Width < 120 || s.Width != s.Height {
		t.Errorf("QR code min size %v: too small for a camera, or not square", s)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(v.qr.Image)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the QR code does not decode: %v", err)
	}
	if res.GetText() != testLink {
		t.Errorf("the QR code says %q, want %q", res.GetText(), testLink)
	}

	c.ret <- nil
	h.until("the end", func() bool { return !v.link.Visible() })
	if v.qr.Visible() || !v.copyLink.Disabled() {
		t.Error("a finished send still shows its QR code or Copy link")
	}
}

func TestSendLinkWithoutServer(t *testing.T) {
	h := newHarness(t)
	h.w.settings.Rendezvous = ""
	h.sendWithCode()
	v := h.w.send
	h.until("the link", func() bool { return v.link.Visible() })
	if want := "ferry://receive/" + testCode; v.link.Text != want {
		t.Errorf("link %q, want %q", v.link.Text, want)
	}
}

func TestSendRefusesBadCodeInLink(t *testing.T) {
	h := newHarness(t)
	c, _ := h.dropFiles()
	c.emit(transfer.Event{Kind: transfer.EventCode, Code: "7-tiger-tomorrow?rendezvous=evil:1"})
	h.until("the code", func() bool { return h.w.send.code.Text != "…" })
	if h.w.send.link.Visible() || h.w.send.qr.Visible() {
		t.Errorf("a link was made from an invalid code: %q", h.w.send.link.Text)
	}
}

func TestCopyLinkPutsLinkOnClipboard(t *testing.T) {
	h := newHarness(t)
	h.w.settings.Rendezvous = testServer
	h.sendWithCode()
	h.until("the link", func() bool { return !h.w.send.copyLink.Disabled() })
	test.Tap(h.w.send.copyLink)
	if got := h.app.Clipboard().Content(); got != testLink {
		t.Errorf("clipboard %q, want %q", got, testLink)
	}
	if h.w.send.copyLink.Text != "Copied" {
		t.Errorf("Copy link says %q after copying", h.w.send.copyLink.Text)
	}
}

// noEngineCall fails if the engine was asked to do anything.
func (h *harness) noEngineCall() {
	h.t.Helper()
	select {
	case c := <-h.eng.calls:
		h.t.Fatalf("the engine was called: %v %q", c.dir, c.code)
	default:
	}
	if len(h.w.jobs) != 0 {
		h.t.Fatalf("%d transfers started", len(h.w.jobs))
	}
}

func TestOpenLinkFillsReceiveWithoutAccepting(t *testing.T) {
	h := newHarness(t)
	h.w.settings.Rendezvous = "mine.example:7887"
	if err := h.w.OpenLink(testLink); err != nil {
		t.Fatal(err)
	}
	v := h.w.recv
	if h.w.tabs.Selected() != h.w.recvTab {
		t.Error("the Receive tab is not selected")
	}
	if v.entry.Text != testCode {
		t.Errorf("entry %q, want %q", v.entry.Text, testCode)
	}
	if !v.serverRow.Visible() || !strings.Contains(v.server.Text, testServer) || !strings.Contains(v.server.Text, "mine.example:7887") {
		t.Errorf("server row visible %v, text %q: want the link's server and the settings' one", v.serverRow.Visible(), v.server.Text)
	}
	if v.receive.Disabled() {
		t.Error("Receive is disabled with the link's code")
	}
	h.q.drain()
	h.noEngineCall()

	test.Tap(v.receive)
	c := h.eng.next(t)
	if c.dir != dirReceive || c.code != testCode {
		t.Fatalf("engine got %v %q", c.dir, c.code)
	}
	if h.engineSettings.Rendezvous != testServer {
		t.Errorf("received through %q, want the link's %q", h.engineSettings.Rendezvous, testServer)
	}
	if h.w.settings.Rendezvous != "mine.example:7887" {
		t.Errorf("the link changed the settings' server to %q", h.w.settings.Rendezvous)
	}
	if c.req.Accept == nil {
		t.Fatal("a receive from a link does not ask before accepting")
	}
	p, errc, okc := h.offer(c)
	if p.dialog == nil {
		t.Fatal("no offer dialog")
	}
	test.Tap(findButton(h.w.win.Canvas(), "Decline"))
	if ok, err := <-okc, <-errc; ok || err != nil {
		t.Errorf("Accept = %v, %v after Decline", ok, err)
	}
	if v.serverRow.Visible() || v.linkServer != "" {
		t.Error("the link's server stays for the next code")
	}
}

func TestOpenBadLinkExplains(t *testing.T) {
	h := newHarness(t)
	for _, link := range []string{
		"ferry://receive/7-tiger-tomorrow?rendezvous=evil.example:7887&yes=1",
		"ferry://receive/7-tiger-tomorrow?rendezvous=evil%0A.example:7887",
		"ferry://receive/7-tigr-tomorrow",
	} {
		if err := h.w.OpenLink(link); err == nil {
			t.Errorf("OpenLink(%q) took it", link)
		}
		v := h.w.recv
		if !v.message.Visible() || !strings.HasPrefix(v.message.Text, "This link cannot be used: ") {
			t.Errorf("OpenLink(%q): message %q (visible %v)", link, v.message.Text, v.message.Visible())
		}
		if v.entry.Text != "" || !v.receive.Disabled() || v.serverRow.Visible() {
			t.Errorf("OpenLink(%q) filled in the tab: entry %q, server %q", link, v.entry.Text, v.server.Text)
		}
		if strings.Contains(v.message.Text, "\n") {
			t.Errorf("OpenLink(%q): the message shows a raw newline: %q", link, v.message.Text)
		}
	}
	h.noEngineCall()
}

// TestLinkServerDropped: editing the code into another, or Use my
// settings, goes back to the settings' server.
func TestLinkServerDropped(t *testing.T) {
	for name, drop := range map[string]func(v *receiveView) (code string){
		"another code": func(v *receiveView) string {
			v.entry.SetText("8-tiger-tomorrow")
			return "8-tiger-tomorrow"
		},
		"Use my settings": func(v *receiveView) string {
			test.Tap(v.clearServer)
			return testCode
		},
	} {
		h := newHarness(t)
		h.w.settings.Rendezvous = "mine.example:7887"
		if err := h.w.OpenLink(testLink); err != nil {
			t.Fatal(err)
		}
		want := drop(h.w.recv)
		if h.w.recv.serverRow.Visible() || h.w.recv.entry.Text != want {
			t.Errorf("%s: server row visible %v, entry %q", name, h.w.recv.serverRow.Visible(), h.w.recv.entry.Text)
		}
		test.Tap(h.w.recv.receive)
		if c := h.eng.next(t); c.code != want {
			t.Errorf("%s: received %q, want %q", name, c.code, want)
		}
		if h.engineSettings.Rendezvous != "mine.example:7887" {
			t.Errorf("%s: received through %q, want the settings' server", name, h.engineSettings.Rendezvous)
		}
	}
}

func TestPastedLinkInEntry(t *testing.T) {
	h := newHarness(t)
	v := h.w.recv
	v.entry.SetText(testLink)
	if v.valid != testCode || v.receive.Disabled() {
		t.Fatalf("a pasted link: valid %q, Receive disabled %v", v.valid, v.receive.Disabled())
	}
	if !v.serverRow.Visible() || !strings.Contains(v.server.Text, testServer) {
		t.Errorf("a pasted link's server is not shown: %q", v.server.Text)
	}
	if len(v.suggestionTexts()) != 0 {
		t.Errorf("completions for a link: %q", v.suggestionTexts())
	}
	v.entry.SetText(testLink + "&x=1")
	if v.valid != "" || !v.receive.Disabled() || !v.message.Visible() || v.serverRow.Visible() {
		t.Error("a pasted link with an unknown parameter is taken, or its server shown")
	}
	h.noEngineCall()
}
