package ui

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"ferry/assets"
	"ferry/transfer"
	"ferry/transport"
)

const testCode = "7-tiger-tomorrow"

// dropFiles makes a file and a folder, drops them on the window and
// presses Send.
func (h *harness) dropFiles() (*call, []string) {
	h.t.Helper()
	dir := h.t.TempDir()
	file := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	folder := filepath.Join(dir, "photos")
	if err := os.Mkdir(folder, 0o755); err != nil {
		h.t.Fatal(err)
	}
	h.w.Drop([]fyne.URI{storage.NewFileURI(file), storage.NewFileURI(folder)})
	test.Tap(h.w.send.pending.send)
	return h.eng.next(h.t), []string{file, folder}
}

// sendWithCode drops files and has the engine publish testCode.
func (h *harness) sendWithCode() *call {
	h.t.Helper()
	c, _ := h.dropFiles()
	c.emit(
		transfer.Event{Kind: transfer.EventState, State: transfer.StateHashing},
		transfer.Event{Kind: transfer.EventCode, Code: testCode},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateWaiting},
	)
	h.until("the code", func() bool { return h.w.send.code.Text == testCode })
	return c
}

func TestDropShowsCodeAndList(t *testing.T) {
	h := newHarness(t)
	c, paths := h.dropFiles()
	if c.dir != dirSend || !slices.Equal(c.paths, paths) {
		t.Fatalf("engine got %v %q, want send %q", c.dir, c.paths, paths)
	}
	if !h.w.send.card.Visible() {
		t.Fatal("the send card is hidden")
	}
	if h.w.tabs.Selected() != h.w.sendTab {
		t.Error("the Send tab is not selected")
	}
	if !h.w.send.copy.Disabled() {
		t.Error("Copy is enabled before there is a code")
	}
	items := labelsIn(h.w.send.items)
	if want := []string{"report.txt — 5 B", "photos (folder)"}; !slices.Equal(items, want) {
		t.Errorf("listed %q, want %q", items, want)
	}

	c.emit(
		transfer.Event{Kind: transfer.EventState, State: transfer.StateHashing},
		transfer.Event{Kind: transfer.EventCode, Code: testCode},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateWaiting},
	)
	h.until("the code", func() bool { return h.w.send.code.Text == testCode })
	if !h.w.send.code.TextStyle.Monospace || h.w.send.code.TextSize < 24 {
		t.Errorf("the code is not large monospace: %+v size %v", h.w.send.code.TextStyle, h.w.send.code.TextSize)
	}
	if got := h.w.send.state.Text; got != textWaiting {
		t.Errorf("send state %q, want %q", got, textWaiting)
	}
	if h.w.send.copy.Disabled() {
		t.Error("Copy is disabled with a code")
	}
	r := h.jobRow()
	if r.title.Text != "Send report.txt and photos" {
		t.Errorf("row title %q", r.title.Text)
	}
	if r.state.Text != textWaiting {
		t.Errorf("row state %q", r.state.Text)
	}
}

func TestDropIgnoresNonFileURIs(t *testing.T) {
	h := newHarness(t)
	u, err := storage.ParseURI("https://example.org/x")
	if err != nil {
		t.Fatal(err)
	}
	h.w.Drop([]fyne.URI{u})
	if len(h.w.jobs) != 0 {
		t.Fatal("a web URI started a send")
	}
	if len(h.w.win.Canvas().Overlays().List()) == 0 {
		t.Error("no message about the refused URI")
	}
}

func TestCopyPutsCodeOnClipboard(t *testing.T) {
	h := newHarness(t)
	h.sendWithCode()
	test.Tap(h.w.send.copy)
	if got := h.app.Clipboard().Content(); got != testCode {
		t.Errorf("clipboard %q, want %q", got, testCode)
	}
	if h.w.send.copy.Text != "Copied" {
		t.Errorf("Copy button says %q", h.w.send.copy.Text)
	}
}

func TestCancelCancelsEngineContext(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	test.Tap(h.w.send.cancel)
	select {
	case <-c.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Cancel did not cancel the engine's context")
	}
	h.waitState(textCanceled)
	h.until("the send card's state", func() bool { return h.w.send.state.Text == textCanceled })
	if h.w.send.cancel.Visible() {
		t.Error("Cancel still shown after the send ended")
	}
	if e := h.w.history.Entries(); len(e) != 1 || e[0].Result != ResultCanceled {
		t.Errorf("history %+v, want one canceled entry", e)
	}
}

func TestCancelFromTransfersRowBeforeCode(t *testing.T) {
	h := newHarness(t)
	c, _ := h.dropFiles()
	test.Tap(h.jobRow().cancel) // before any event: Cancel works at any time
	select {
	case <-c.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Cancel did not cancel the engine's context")
	}
	h.waitState(textCanceled)
}

func TestCodeEntryValidation(t *testing.T) {
	h := newHarness(t)
	v := h.w.recv
	if !v.receive.Disabled() {
		t.Fatal("Receive enabled with no code")
	}

	test.Type(v.entry, "tiger")
	if !v.message.Visible() || !strings.Contains(v.message.Text, "must start with its number") {
		t.Errorf("message %q (visible %v)", v.message.Text, v.message.Visible())
	}
	if v.message.Importance != widget.DangerImportance {
		t.Error("an invalid code without completions is not shown as an error")
	}
	if !v.receive.Disabled() {
		t.Error("Receive enabled for an invalid code")
	}

	v.entry.SetText("7-tigr-tomorrow")
	if !strings.Contains(v.message.Text, `did you mean "tiger"`) || !v.receive.Disabled() {
		t.Errorf("message %q, disabled %v", v.message.Text, v.receive.Disabled())
	}

	v.entry.SetText("")
	test.Type(v.entry, "7 Tiger Tomorrow")
	if v.message.Visible() {
		t.Errorf("message %q shown for a valid code", v.message.Text)
	}
	if v.receive.Disabled() {
		t.Error("Receive disabled for a valid code")
	}
	if v.valid != testCode {
		t.Errorf("canonical code %q", v.valid)
	}

	v.entry.SetText("")
	if !v.receive.Disabled() || v.message.Visible() {
		t.Error("an emptied entry keeps Receive enabled or shows a message")
	}
}

func TestCodeCompletion(t *testing.T) {
	h := newHarness(t)
	v := h.w.recv
	test.Type(v.entry, "7-ti")
	got := v.suggestionTexts()
	if len(got) == 0 || !slices.Contains(got, "7-tiger") || len(got) > maxCompletions {
		t.Fatalf("suggestions %q", got)
	}
	if v.message.Importance != widget.LowImportance {
		t.Error("typing a word that still completes is shown as an error")
	}
	// Tapping a first word fills it in and offers second words.
	test.Tap(v.suggestions.Objects[slices.Index(got, "7-tiger")].(*widget.Button))
	if v.entry.Text != "7-tiger-" {
		t.Fatalf("entry %q after tapping a first word", v.entry.Text)
	}
	test.Type(v.entry, "tom")
	if got := v.suggestionTexts(); !slices.Equal(got, []string{testCode}) {
		t.Fatalf("second-word suggestions %q", got)
	}
	test.Tap(v.suggestions.Objects[0].(*widget.Button))
	if v.entry.Text != testCode || v.receive.Disabled() {
		t.Errorf("entry %q, Receive disabled %v", v.entry.Text, v.receive.Disabled())
	}
	if len(v.suggestionTexts()) != 0 {
		t.Errorf("suggestions %q for a complete code", v.suggestionTexts())
	}
}

// manifest offers three files in two top-level entries.
func manifest() *transfer.Manifest {
	return &transfer.Manifest{ChunkSize: 1 << 20, Files: []transfer.FileEntry{
		{Path: "report.pdf", Size: 1000},
		{Path: "photos", Dir: true},
		{Path: "photos/a.jpg", Size: 300},
		{Path: "photos/b.jpg", Size: 200},
	}}
}

// startReceive types the code, taps Receive and returns the engine call.
func (h *harness) startReceive() *call {
	h.t.Helper()
	test.Type(h.w.recv.entry, testCode)
	test.Tap(h.w.recv.receive)
	c := h.eng.next(h.t)
	if c.dir != dirReceive || c.code != testCode {
		h.t.Fatalf("engine got %v %q", c.dir, c.code)
	}
	return c
}

// offer runs Accept from an engine goroutine and waits for the dialog.
func (h *harness) offer(c *call) (*offerPrompt, chan error, chan bool) {
	h.t.Helper()
	errc, okc := make(chan error, 1), make(chan bool, 1)
	c.emit(transfer.Event{Kind: transfer.EventOffer, Files: 3, Bytes: 1500, Names: []string{"report.pdf", "photos"}, Dest: c.req.OutDir},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateOffered})
	go func() {
		ok, err := c.req.Accept(c.ctx, manifest())
		okc <- ok
		errc <- err
	}()
	var p *offerPrompt
	h.until("the offer dialog", func() bool {
		for _, x := range h.w.offers {
			p = x
		}
		return p != nil
	})
	return p, errc, okc
}

func TestOfferAccept(t *testing.T) {
	h := newHarness(t)
	c := h.startReceive()
	if c.req.OutDir != h.dl {
		t.Errorf("OutDir %q, want %q", c.req.OutDir, h.dl)
	}
	if h.w.recv.entry.Text != "" {
		t.Error("the entry keeps the code after Receive")
	}
	p, errc, okc := h.offer(c)
	if want := "The sender offers 3 files, 1.5 kB in total:"; p.summary.Text != want {
		t.Errorf("summary %q, want %q", p.summary.Text, want)
	}
	if !strings.Contains(p.names.Text, "report.pdf") || !strings.Contains(p.names.Text, "photos") {
		t.Errorf("names %q", p.names.Text)
	}
	if p.dest.Text != h.dl {
		t.Errorf("destination %q, want %q", p.dest.Text, h.dl)
	}
	if p.change != nil {
		t.Error("the real engine's offer dialog offers to change the folder it cannot honour")
	}
	h.waitState(textDeciding)

	b := findButton(h.w.win.Canvas(), "Receive")
	if b == nil {
		t.Fatal("no Receive button in the dialog")
	}
	test.Tap(b)
	if ok, err := <-okc, <-errc; !ok || err != nil {
		t.Fatalf("Accept = %v, %v; want true, nil", ok, err)
	}
	if len(h.w.offers) != 0 {
		t.Error("the dialog is still registered")
	}

	c.emit(
		transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathLAN},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateReceiving},
		transfer.Event{Kind: transfer.EventProgress, Bytes: 750, Total: 1500, Rate: 1000, ETA: time.Second},
	)
	h.waitState(textReceiving)
	c.emit(transfer.Event{Kind: transfer.EventDone, Files: 3, Bytes: 1500, Elapsed: 1500 * time.Millisecond})
	test.AssertNotificationSent(t, fyne.NewNotification("Transfer finished", "Received report.pdf and photos (1.5 kB) into "+h.dl), func() {
		c.ret <- nil
		h.waitEnd(textDone)
	})
	r := h.jobRow()
	if r.progress.Value != 1 || !r.show.Visible() || r.cancel.Visible() {
		t.Errorf("done row: progress %v, show %v, cancel %v", r.progress.Value, r.show.Visible(), r.cancel.Visible())
	}
	var opened string
	h.w.OpenFolder = func(d string) error { opened = d; return nil }
	test.Tap(r.show)
	if opened != h.dl {
		t.Errorf("Show in folder opened %q, want %q", opened, h.dl)
	}
}

func TestOfferDecline(t *testing.T) {
	h := newHarness(t)
	c := h.startReceive()
	_, errc, okc := h.offer(c)
	b := findButton(h.w.win.Canvas(), "Decline")
	if b == nil {
		t.Fatal("no Decline button in the dialog")
	}
	test.Tap(b)
	if ok, err := <-okc, <-errc; ok || err != nil {
		t.Fatalf("Accept = %v, %v; want false, nil", ok, err)
	}
	c.ret <- transfer.Errorf(transfer.KindDeclined, "", "you declined the transfer")
	h.waitState(textDeclined)
	if e := h.w.history.Entries(); len(e) != 1 || e[0].Result != ResultDeclined || e[0].Direction != "receive" {
		t.Errorf("history %+v", e)
	}
}

func TestOfferDismissedWhenTransferEnds(t *testing.T) {
	h := newHarness(t)
	c := h.startReceive()
	_, errc, okc := h.offer(c)
	test.Tap(h.jobRow().cancel)
	if ok, err := <-okc, <-errc; ok || err == nil {
		t.Fatalf("Accept = %v, %v; want false and the context's error", ok, err)
	}
	h.waitState(textCanceled)
	h.until("the dialog to close", func() bool { return len(h.w.offers) == 0 })
	if findButton(h.w.win.Canvas(), "Decline") != nil {
		t.Error("the offer dialog is still on screen")
	}
}

func TestOfferChangeFolderWithLateEngine(t *testing.T) {
	h := newHarness(t)
	h.w = h.open(func(Settings) Engine { return lateEngine{h.eng} })
	c := h.startReceive()
	if c.req.OutDirAfterAccept == nil {
		t.Fatal("no OutDirAfterAccept for an engine that reads it")
	}
	p, _, okc := h.offer(c)
	if p.change == nil {
		t.Fatal("no Change… button")
	}
	other := t.TempDir()
	p.job.setOutDir(other) // what the folder picker's callback does
	test.Tap(findButton(h.w.win.Canvas(), "Receive"))
	if !<-okc {
		t.Fatal("not accepted")
	}
	if got := c.req.OutDirAfterAccept(); got != other {
		t.Errorf("folder after accept %q, want %q", got, other)
	}
}

// TestSendSkippedShownWhenDone: links and special files the sender left
// out are counted in the finished row, not silently dropped.
func TestSendSkippedShownWhenDone(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.emit(
		transfer.Event{Kind: transfer.EventSkipped, File: "/home/x/album/link", Reason: string(transfer.SkipLink)},
		transfer.Event{Kind: transfer.EventSkipped, File: "/home/x/album/fifo", Reason: string(transfer.SkipSpecial)},
		transfer.Event{Kind: transfer.EventDone, Files: 1, Bytes: 10, Elapsed: time.Second},
	)
	c.ret <- nil
	h.waitEnd("Done — 2 not sent (links or special files)")
}

func TestProgressRowUpdates(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.emit(
		transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathDirectUDP, Peer: "192.0.2.1:4000"},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateSending},
		transfer.Event{Kind: transfer.EventProgress, Bytes: 25_000_000, Total: 100_000_000, Rate: 5_000_000, ETA: 15 * time.Second},
	)
	r := h.jobRow()
	h.until("progress", func() bool { return r.progress.Value == 0.25 })
	for _, tc := range []struct{ name, got, want string }{
		{"state", r.state.Text, textSending},
		{"size", r.size.Text, "25 MB of 100 MB"},
		{"rate", r.rate.Text, "5.0 MB/s"},
		{"eta", r.eta.Text, "ETA 15s"},
		{"path", r.path.Text, "Direct"},
		{"send card", h.w.send.state.Text, textSending},
	} {
		if tc.got != tc.want {
			t.Errorf("%s %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	c.emit(transfer.Event{Kind: transfer.EventState, State: transfer.StateVerifying})
	h.waitState(textVerifying)
	c.emit(transfer.Event{Kind: transfer.EventDone, Files: 1, Bytes: 100_000_000, Elapsed: 20 * time.Second})
	c.ret <- nil
	h.waitEnd(textDone)
	if r.size.Text != "100 MB of 100 MB" || r.rate.Text != "5.0 MB/s" || r.eta.Text != "" {
		t.Errorf("done row: %q %q %q", r.size.Text, r.rate.Text, r.eta.Text)
	}
	if r.show.Visible() {
		t.Error("Show in folder on a send row")
	}
}

func TestProgressIsCoalesced(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	before := h.q.posts.Load()
	start := time.Now()
	const n = 5000
	for i := range n {
		c.emit(transfer.Event{Kind: transfer.EventProgress, Bytes: int64(i + 1), Total: n})
	}
	r := h.jobRow()
	h.until("the last progress", func() bool { return r.size.Text == humanBytes(n)+" of "+humanBytes(n) })
	posts := h.q.posts.Load() - before
	// One flush per 5 ms tick at most, whatever the event count.
	if limit := int64(time.Since(start)/(5*time.Millisecond)) + 2; posts > limit || posts >= n/10 {
		t.Errorf("%d posts to the Fyne goroutine for %d events (limit %d)", posts, n, limit)
	}
}

// TestUpgradeChangesPathLive: an upgrade from the relay to a direct path
// changes the row's path at once and says nothing about a network change.
func TestUpgradeChangesPathLive(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.emit(
		transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathRelay},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateSending},
		transfer.Event{Kind: transfer.EventProgress, Bytes: 10, Total: 100},
	)
	r := h.jobRow()
	h.until("the relayed path", func() bool { return r.path.Text == "Relayed through your server" })
	c.emit(transfer.Event{Kind: transfer.EventPath, Path: transfer.PathDirectUDP, Reason: "upgraded"},
		transfer.Event{Kind: transfer.EventProgress, Bytes: 20, Total: 100})
	h.until("the direct path", func() bool { return r.path.Text == "Direct" })
	h.until("progress", func() bool { return r.progress.Value == 0.2 })
	if r.state.Text == textNetChanged {
		t.Errorf("state %q after an upgrade", r.state.Text)
	}
}

func TestNetworkChangeState(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.emit(
		transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathDirectUDP},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateSending},
		transfer.Event{Kind: transfer.EventProgress, Bytes: 10, Total: 100},
		transfer.Event{Kind: transfer.EventPath, Path: transfer.PathRelay, Reason: "fallback"},
	)
	h.waitState(textNetChanged)
	r := h.jobRow()
	if r.path.Text != "Relayed through your server" {
		t.Errorf("path %q after the change", r.path.Text)
	}
	// Data flowing again soon after does not hide the note at once...
	c.emit(transfer.Event{Kind: transfer.EventProgress, Bytes: 20, Total: 100})
	h.until("progress", func() bool { return r.progress.Value == 0.2 })
	if r.state.Text != textNetChanged {
		t.Errorf("state %q right after the change", r.state.Text)
	}
	// ...a state change does.
	c.emit(transfer.Event{Kind: transfer.EventState, State: transfer.StateSending})
	h.waitState(textSending)
}

func TestNetworkChangeNoteEnds(t *testing.T) {
	old := netChangeHold
	netChangeHold = 0
	t.Cleanup(func() { netChangeHold = old })
	h := newHarness(t)
	c := h.sendWithCode()
	c.emit(
		transfer.Event{Kind: transfer.EventState, State: transfer.StateSending},
		transfer.Event{Kind: transfer.EventPath, Path: transfer.PathDirectTCP, Reason: "migrated"},
	)
	h.waitState(textNetChanged)
	c.emit(transfer.Event{Kind: transfer.EventProgress, Bytes: 20, Total: 100})
	h.waitState(textSending)
	if r := h.jobRow(); r.path.Text != "Direct (TCP)" {
		t.Errorf("path %q", r.path.Text)
	}
}

func TestErrorEventShown(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.emit(transfer.Event{Kind: transfer.EventError, ErrKind: transfer.KindPeerGone, Message: "the receiver went away; ask them to try again"})
	want := "Failed: " + "The receiver went away; ask them to try again"
	h.waitState(want)
	test.AssertNotificationSent(t, fyne.NewNotification("Transfer failed", "The receiver went away; ask them to try again"), func() {
		c.ret <- errors.New("peer gone")
		h.until("the send to end", func() bool { return h.w.jobs[0].finalized })
	})
	if h.jobRow().state.Text != want {
		t.Errorf("state %q after the return, want the event's message", h.jobRow().state.Text)
	}
	if h.w.send.state.Text != want {
		t.Errorf("send card state %q", h.w.send.state.Text)
	}
	e := h.w.history.Entries()
	if len(e) != 1 || e[0].Result != ResultFailed || e[0].Message != "The receiver went away; ask them to try again" {
		t.Errorf("history %+v", e)
	}
}

func TestReturnedErrorShown(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.ret <- &transfer.Error{Kind: transfer.KindNoPath, Err: errors.New("transport: no path to the peer"),
		Hint: "the two computers could not reach each other; try a rendezvous server both can reach (--rendezvous)"}
	h.waitState("Failed: " + "No path to the peer; the two computers could not reach each other; try a rendezvous server both can reach (Settings → Rendezvous server)")
}

func TestEnginePanicIsAnError(t *testing.T) {
	h := newHarness(t)
	h.eng.panic = true
	h.dropFiles()
	h.waitState("Failed: " + "Internal error: boom")
}

func TestHistoryPersistsAcrossWindows(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.emit(
		transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathLAN},
		transfer.Event{Kind: transfer.EventDone, Files: 1, Bytes: 5, Elapsed: time.Second},
	)
	c.ret <- nil
	h.waitEnd(textDone)

	w2 := h.open(func(Settings) Engine { return h.eng })
	rows := w2.historyTab.rows
	if len(rows) != 1 {
		t.Fatalf("%d history rows in a new window, want 1", len(rows))
	}
	r := rows[0]
	if r.summary.Text != "Sent report.txt and photos" {
		t.Errorf("summary %q", r.summary.Text)
	}
	if !strings.Contains(r.detail.Text, "1 file, 5 B in 1.0s · Local network") {
		t.Errorf("detail %q", r.detail.Text)
	}
	var opened string
	w2.OpenFolder = func(d string) error { opened = d; return nil }
	test.Tap(r.show)
	if want := filepath.Dir(h.w.jobs[0].paths[0]); opened != want {
		t.Errorf("Show in folder opened %q, want %q", opened, want)
	}

	test.Tap(w2.historyTab.clear)
	if len(w2.historyTab.rows) != 0 {
		t.Error("Clear history left rows")
	}
	w3 := h.open(func(Settings) Engine { return h.eng })
	if len(w3.history.Entries()) != 0 {
		t.Error("cleared history came back")
	}
}

func TestHistoryDamagedFile(t *testing.T) {
	a := test.NewTempApp(t)
	name := historyName(t)
	t.Cleanup(func() { _ = a.Storage().Remove(name) })
	wc, err := a.Storage().Create(name)
	if err != nil {
		t.Fatal(err)
	}
	wc.Write([]byte("{not json"))
	wc.Close()
	h, err := LoadHistory(a.Storage(), name)
	if err == nil || len(h.Entries()) != 0 {
		t.Fatalf("damaged history: %v entries, err %v", len(h.Entries()), err)
	}
	if err := h.Add(HistoryEntry{Direction: "send", Result: ResultDone}); err != nil {
		t.Fatal(err)
	}
	h2, err := LoadHistory(a.Storage(), name)
	if err != nil || len(h2.Entries()) != 1 {
		t.Fatalf("reloaded: %d entries, %v", len(h2.Entries()), err)
	}
}

func TestSettingsPersisted(t *testing.T) {
	h := newHarness(t)
	s := h.w.settingsTab
	if s.folder.Text != h.dl || h.w.recv.folder.Text != h.dl {
		t.Errorf("download folder shown as %q / %q", s.folder.Text, h.w.recv.folder.Text)
	}

	test.Type(s.rendezvous, "nope")
	if !s.rvError.Visible() {
		t.Error("no message for an invalid rendezvous server")
	}
	if got := LoadSettings(h.app.Preferences()).Rendezvous; got != "" {
		t.Errorf("invalid rendezvous %q was saved", got)
	}
	s.rendezvous.SetText("")
	test.Type(s.rendezvous, "relay.example.org:7887")
	if s.rvError.Visible() {
		t.Errorf("message %q for a valid server", s.rvError.Text)
	}
	test.Tap(s.relay) // default on: now off
	test.Tap(s.links) // default off: now on
	s.theme.SetSelected("Dark")
	other := t.TempDir()
	h.w.setDownloadDir(other)

	want := Settings{Rendezvous: "relay.example.org:7887", DownloadDir: other, AllowRelay: false, Theme: ThemeDark, FollowLinks: true}
	if got := LoadSettings(h.app.Preferences()); got != want {
		t.Errorf("saved %+v, want %+v", got, want)
	}
	if h.w.recv.folder.Text != other {
		t.Errorf("Receive tab shows %q", h.w.recv.folder.Text)
	}

	var got Settings
	w2 := h.open(func(s Settings) Engine { got = s; return h.eng })
	if w2.settingsTab.rendezvous.Text != want.Rendezvous || w2.settingsTab.relay.Checked || !w2.settingsTab.links.Checked || w2.settingsTab.theme.Selected != "Dark" {
		t.Error("a new window does not show the saved settings")
	}
	w2.StartReceive(testCode)
	h.eng.next(t)
	if got != want {
		t.Errorf("engine built with %+v, want %+v", got, want)
	}
	if _, ok := h.app.Settings().Theme().(variantTheme); !ok {
		t.Errorf("theme %T after choosing Dark", h.app.Settings().Theme())
	}
}

func TestCloseAsksWhileTransferring(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	h.w.RequestClose()
	if h.w.closed {
		t.Fatal("closed without asking")
	}
	b := findButton(h.w.win.Canvas(), "Keep going")
	if b == nil {
		t.Fatal("no question before closing")
	}
	test.Tap(b)
	if h.w.closed || c.ctx.Err() != nil {
		t.Fatal("Keep going closed the window or canceled the send")
	}
	h.w.RequestClose()
	test.Tap(findButton(h.w.win.Canvas(), "Quit"))
	if !h.w.closed {
		t.Error("Quit did not close the window")
	}
	select {
	case <-c.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Quit did not cancel the send")
	}
}

func TestCloseWhenIdle(t *testing.T) {
	h := newHarness(t)
	h.w.RequestClose()
	if !h.w.closed {
		t.Error("an idle window asked before closing")
	}
}

func TestClearFinished(t *testing.T) {
	h := newHarness(t)
	c := h.sendWithCode()
	c.ret <- nil
	h.waitEnd(textDone)
	h.w.StartSend([]string{t.TempDir()})
	h.eng.next(t)
	h.w.clearFinished()
	if len(h.w.jobs) != 1 || len(h.w.transfers.Objects) != 1 {
		t.Errorf("%d jobs, %d rows after clearing finished ones", len(h.w.jobs), len(h.w.transfers.Objects))
	}
}

func TestWords(t *testing.T) {
	for p, want := range map[transfer.PathLabel]string{
		transfer.PathDirectUDP: "Direct",
		transfer.PathDirectTCP: "Direct (TCP)",
		transfer.PathRelay:     "Relayed through your server",
		transfer.PathLAN:       "Local network",
		"":                     "",
	} {
		if got := pathWords(p); got != want {
			t.Errorf("pathWords(%q) = %q, want %q", p, got, want)
		}
	}
	for st, want := range map[transfer.State]string{
		transfer.StateWaiting:    "Waiting for receiver",
		transfer.StateConnecting: "Connecting",
		transfer.StatePairing:    "Connecting",
		transfer.StateSending:    "Sending",
		transfer.StateReceiving:  "Receiving",
		transfer.StateVerifying:  "Verifying",
		transfer.StateDone:       "Done",
	} {
		if got := stateWords(st, dirSend); got != want {
			t.Errorf("stateWords(%q) = %q, want %q", st, got, want)
		}
	}
	if got := humanETA(200 * time.Second); got != "ETA 3m20s" {
		t.Errorf("humanETA = %q", got)
	}
	if got := humanRate(0); got != "" {
		t.Errorf("humanRate(0) = %q", got)
	}
	if got := errorMessage(context.DeadlineExceeded); got != "The other computer did not answer in time" {
		t.Errorf("errorMessage(deadline) = %q", got)
	}
}

func TestValidateRendezvous(t *testing.T) {
	for s, ok := range map[string]bool{
		"": true, "  ": true, "host:7887": true, "[::1]:7887": true, "192.0.2.1:1": true,
		"host": false, "host:": false, ":7887": false, "host:0": false, "host:70000": false, "host:x": false,
	} {
		if err := ValidateRendezvous(s); (err == nil) != ok {
			t.Errorf("ValidateRendezvous(%q) = %v", s, err)
		}
	}
}

func TestRealEngineRefusesBadInput(t *testing.T) {
	e := NewEngine(Settings{})
	err := e.Receive(context.Background(), "not a code", ReceiveRequest{OutDir: t.TempDir()}, nil)
	if transfer.KindOf(err) != transfer.KindBadCode {
		t.Errorf("Receive(bad code) = %v (%s)", err, transfer.KindOf(err))
	}
	err = e.Send(context.Background(), []string{filepath.Join(t.TempDir(), "missing")}, nil)
	if transfer.KindOf(err) != transfer.KindNotFound {
		t.Errorf("Send(missing) = %v (%s)", err, transfer.KindOf(err))
	}
	if _, ok := e.(LateOutDirEngine); !ok {
		t.Error("the real engine does not read the folder chosen in the offer dialog")
	}
}

// TestRealEngineSettings: the settings reach the engine's configuration.
func TestRealEngineSettings(t *testing.T) {
	e, ok := NewEngine(Settings{Rendezvous: " rv.example.org:7887 ", FollowLinks: true, AllowRelay: true}).(*realEngine)
	if !ok {
		t.Fatal("NewEngine did not return the real engine")
	}
	if e.cfg.Rendezvous != "rv.example.org:7887" || !e.cfg.FollowLinks || e.cfg.Paths != transport.AnyPath {
		t.Errorf("engine config %+v", e.cfg)
	}
	if e, _ := NewEngine(Settings{AllowRelay: false}).(*realEngine); e.cfg.Paths != transport.DirectOnly {
		t.Errorf("relaying not allowed, but the engine's path policy is %v", e.cfg.Paths)
	}
	if e, _ := NewEngine(Settings{}).(*realEngine); e.cfg.FollowLinks {
		t.Error("links are followed by default")
	}
}

func TestIcon(t *testing.T) {
	b := assets.Icon.Content()
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("assets.Icon is not a PNG (%d bytes)", len(b))
	}
	a := test.NewTempApp(t)
	w := NewMainWindow(a, newFakeEngine())
	t.Cleanup(w.close)
	if w.Window() == nil || w.Window().Title() != "ferry" {
		t.Error("NewMainWindow made no ferry window")
	}
}

func TestRunSendsGivenFilesAndCancelsOnQuit(t *testing.T) {
	a := test.NewTempApp(t)
	a.Preferences().SetString(prefRendezvous, "relay.example.org:7887")
	eng := newFakeEngine()
	file := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got Settings
	// The test app's ShowAndRun returns at once, as if the user quit.
	Run(a, func(s Settings) Engine { got = s; return eng }, file)
	c := eng.next(t)
	if !slices.Equal(c.paths, []string{file}) {
		t.Errorf("sent %q, want %q", c.paths, file)
	}
	if got.Rendezvous != "relay.example.org:7887" {
		t.Errorf("engine settings %+v", got)
	}
	if c.ctx.Err() == nil {
		t.Error("quitting left the send running")
	}
}
