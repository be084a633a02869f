package ui

import (
	"io"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"ferry/transfer"
)

// TestSendTextBox: the Send tab's text box sends its text like a file
// send (the code, the list, the row), and the history says "Text, N bytes"
// without the words.
func TestSendTextBox(t *testing.T) {
	h := newHarness(t)
	v := h.w.send
	if !v.sendText.Disabled() {
		t.Error("Send text is enabled with an empty box")
	}
	const words = "the wifi password is tiger-tomorrow"
	test.Type(v.text, words)
	if v.sendText.Disabled() {
		t.Fatal("Send text is disabled with a text in the box")
	}
	test.Tap(v.sendText)
	c := h.eng.next(t)
	if c.dir != dirSend || c.text != words || c.paths != nil {
		t.Fatalf("engine got %v %q paths %q, want a send of the text", c.dir, c.text, c.paths)
	}
	if v.text.Text != "" || !v.sendText.Disabled() {
		t.Errorf("box %q, Send text disabled %v after sending", v.text.Text, v.sendText.Disabled())
	}
	if got := labelsIn(v.items); len(got) != 1 || got[0] != "A text of 35 bytes" {
		t.Errorf("what is sent: %q", got)
	}
	c.emit(transfer.Event{Kind: transfer.EventCode, Code: testCode},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateWaiting})
	h.until("the code", func() bool { return v.code.Text == testCode })
	if !v.card.Visible() || h.jobRow().title.Text != "Send a text of 35 bytes" {
		t.Errorf("card shown %v, row title %q", v.card.Visible(), h.jobRow().title.Text)
	}
	c.emit(transfer.Event{Kind: transfer.EventDone, IsText: true, Bytes: 35, Elapsed: time.Second})
	test.AssertNotificationSent(t, fyne.NewNotification("Transfer finished", "Sent a text of 35 bytes"), func() {
		c.ret <- nil
		h.waitEnd(textDone)
	})
	checkTextHistory(t, h, "Sent a text", "Text, 35 bytes", words)
}

// checkTextHistory checks the newest history entry is a text with that
// summary and detail, and that what the text said is stored nowhere.
func checkTextHistory(t *testing.T, h *harness, summary, detail, words string) {
	t.Helper()
	e := h.w.history.Entries()
	if len(e) != 1 || !e[0].Text || e[0].Folder != "" || len(e[0].Names) != 0 {
		t.Fatalf("history %+v", e)
	}
	r := h.w.historyTab.rows[0]
	if r.summary.Text != summary || !strings.Contains(r.detail.Text, detail) || r.show.Visible() {
		t.Errorf("history row %q / %q (Show in folder %v)", r.summary.Text, r.detail.Text, r.show.Visible())
	}
	rc, err := h.app.Storage().Open(historyName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if strings.Contains(string(b), words[:10]) {
		t.Errorf("the history file holds the text:\n%s", b)
	}
}

// TestSendTextBoxRefuses: a text over 1 MiB, or not UTF-8, is refused
// with a message, and nothing starts.
func TestSendTextBoxRefuses(t *testing.T) {
	for text, want := range map[string]string{
		strings.Repeat("x", transfer.MaxTextBytes+1): "longer than 1048576 bytes",
		"caf\xe9": "not valid UTF-8",
	} {
		h := newHarness(t)
		// Set without SetText: laying out a megabyte in the entry takes
		// half a minute and is not what is tested here.
		h.w.send.text.Text = text
		h.w.send.sendText.Enable()
		test.Tap(h.w.send.sendText)
		h.noEngineCall()
		found := false
		for _, o := range h.w.win.Canvas().Overlays().List() {
			for _, l := range labelsIn(o) {
				found = found || strings.Contains(l, want)
			}
		}
		if !found {
			t.Errorf("no message says %q", want)
		}
	}
}

// offerText runs AcceptText for a text of n bytes from an engine goroutine
// and waits for the dialog.
func (h *harness) offerText(c *call, n int64) (*offerPrompt, chan bool) {
	h.t.Helper()
	if c.req.AcceptText == nil {
		h.t.Fatal("no AcceptText in the receive request")
	}
	okc := make(chan bool, 1)
	c.emit(transfer.Event{Kind: transfer.EventOffer, IsText: true, Bytes: n},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateOffered})
	go func() {
		ok, err := c.req.AcceptText(c.ctx, n)
		okc <- ok && err == nil
	}()
	var p *offerPrompt
	h.until("the offer dialog", func() bool {
		for _, x := range h.w.offers {
			p = x
		}
		return p != nil
	})
	return p, okc
}

// TestReceivedTextDialog: a text offer goes through an accept dialog; the
// text then shows in a dialog, exactly, selectable, with Copy putting it on
// the clipboard; no folder is involved, and the history keeps only its
// length.
func TestReceivedTextDialog(t *testing.T) {
	h := newHarness(t)
	c := h.startReceive()
	text := "line one\n\x1b[31mline two\u202e ✓"
	n := int64(len(text))
	p, okc := h.offerText(c, n)
	if want := "The sender offers a text of 29 bytes."; p.summary.Text != want {
		t.Errorf("summary %q, want %q", p.summary.Text, want)
	}
	if p.dest != nil || p.change != nil {
		t.Error("the text offer shows a download folder")
	}
	test.Tap(findButton(h.w.win.Canvas(), "Receive"))
	if !<-okc {
		t.Fatal("not accepted")
	}
	c.emit(transfer.Event{Kind: transfer.EventState, State: transfer.StateReceiving},
		transfer.Event{Kind: transfer.EventText, Text: text, Bytes: n},
		transfer.Event{Kind: transfer.EventDone, IsText: true, Bytes: n, Elapsed: time.Second})
	c.ret <- nil
	h.waitEnd(textDone)
	h.until("the text dialog", func() bool { return h.w.textShown != nil })
	d := h.w.textShown
	if d.shown.Text != text || !d.shown.Selectable || d.note.Visible() {
		t.Errorf("shown %q (selectable %v, note %v), want the text whole", d.shown.Text, d.shown.Selectable, d.note.Visible())
	}
	if r := h.jobRow(); r.show.Visible() || r.title.Text != "Receive a text of 29 bytes" {
		t.Errorf("row %q offers Show in folder: %v", r.title.Text, r.show.Visible())
	}
	copyButton := findButton(h.w.win.Canvas(), "Copy")
	if copyButton == nil {
		t.Fatal("no Copy button")
	}
	test.Tap(copyButton)
	if got := h.app.Clipboard().Content(); got != text {
		t.Errorf("clipboard %q, want %q", got, text)
	}
	if copyButton.Text != "Copied" {
		t.Errorf("Copy says %q after copying", copyButton.Text)
	}
	test.Tap(findButton(h.w.win.Canvas(), "Close"))
	if h.w.textShown != nil || findButton(h.w.win.Canvas(), "Copied") != nil {
		t.Error("the text dialog is still there after Close")
	}
	if _, ok := h.w.jobs[0].takeText(); ok {
		t.Error("the job still holds the text")
	}
	checkTextHistory(t, h, "Received a text", "Text, 29 bytes", text)
}

// TestReceivedLongText: the dialog shows the start of a long text and
// says so; Copy copies all of it.
func TestReceivedLongText(t *testing.T) {
	h := newHarness(t)
	c := h.startReceive()
	text := strings.Repeat("é", maxShownText) // twice maxShownText bytes
	_, okc := h.offerText(c, int64(len(text)))
	test.Tap(findButton(h.w.win.Canvas(), "Receive"))
	<-okc
	c.emit(transfer.Event{Kind: transfer.EventText, Text: text, Bytes: int64(len(text))})
	h.until("the text dialog", func() bool { return h.w.textShown != nil })
	d := h.w.textShown
	if len(d.shown.Text) != maxShownText || !strings.HasPrefix(text, d.shown.Text) || !d.note.Visible() {
		t.Errorf("shown %d bytes (a prefix: %v), note %q", len(d.shown.Text), strings.HasPrefix(text, d.shown.Text), d.note.Text)
	}
	test.Tap(findButton(h.w.win.Canvas(), "Copy"))
	if h.app.Clipboard().Content() != text {
		t.Error("Copy did not copy the whole text")
	}
}

// TestTextOfferDeclined: Decline on a text offer answers no and the
// transfer ends declined, with no text shown.
func TestTextOfferDeclined(t *testing.T) {
	h := newHarness(t)
	c := h.startReceive()
	_, okc := h.offerText(c, 5)
	test.Tap(findButton(h.w.win.Canvas(), "Decline"))
	if <-okc {
		t.Fatal("accepted")
	}
	c.ret <- transfer.Errorf(transfer.KindDeclined, "", "you declined the transfer")
	h.waitEnd(textDeclined)
	if h.w.textShown != nil {
		t.Error("a text dialog after declining")
	}
}
