package ui

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"

	"ferry/transfer"
)

// makeFiles makes files named names (a name ending in "/" is a folder) in
// a temporary folder and returns their paths.
func makeFiles(t *testing.T, names ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		var err error
		if n[len(n)-1] == '/' {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte("hello"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func fileURIs(paths ...string) []fyne.URI {
	out := make([]fyne.URI, len(paths))
	for i, p := range paths {
		out[i] = storage.NewFileURI(p)
	}
	return out
}

// noCall fails if the engine was called.
func (h *harness) noCall() {
	h.t.Helper()
	select {
	case c := <-h.eng.calls:
		h.t.Fatalf("the engine was called: %v %q", c.dir, c.paths)
	default:
	}
}

// TestPicksAccumulate: picks and drops gather in one list, without
// duplicates, and nothing is sent until Send.
func TestPicksAccumulate(t *testing.T) {
	h := newHarness(t)
	p := makeFiles(t, "a.txt", "b.txt", "photos/")
	v := h.w.send
	if v.pending.card.Visible() {
		t.Fatal("the pending list shows while empty")
	}
	h.w.Drop(fileURIs(p[0]))                 // a pick arrives as a drop
	h.w.Drop(fileURIs(p[1], p[2], p[0]+"/")) // a.txt again, spelled otherwise
	h.noCall()
	if !slices.Equal(v.pending.paths, p) {
		t.Fatalf("pending %q, want %q", v.pending.paths, p)
	}
	if !v.pending.card.Visible() || v.card.Visible() {
		t.Error("the pending list is hidden, or a send card shows before Send")
	}
	labels := labelsIn(v.pending.card)
	for _, want := range []string{"Ready to send: 3 items", "a.txt — 5 B", "b.txt — 5 B", "photos (folder)"} {
		if !slices.Contains(labels, want) {
			t.Errorf("no %q in %q", want, labels)
		}
	}
}

// TestPendingRemoveAndClear: each row's remove button takes its path off;
// Clear empties the list.
func TestPendingRemoveAndClear(t *testing.T) {
	h := newHarness(t)
	p := makeFiles(t, "a.txt", "b.txt", "c.txt")
	h.w.Drop(fileURIs(p...))
	v := h.w.send
	removeB := findButtonIn(v.pending.rows.Objects[1], "")
	if removeB == nil {
		t.Fatal("no remove button on the second row")
	}
	test.Tap(removeB)
	if want := []string{p[0], p[2]}; !slices.Equal(v.pending.paths, want) {
		t.Fatalf("after remove: %q, want %q", v.pending.paths, want)
	}
	if got := len(v.pending.rows.Objects); got != 2 {
		t.Errorf("%d rows after remove", got)
	}
	test.Tap(v.pending.clear)
	if len(v.pending.paths) != 0 || v.pending.card.Visible() {
		t.Errorf("Clear left %q (card shown %v)", v.pending.paths, v.pending.card.Visible())
	}
	h.noCall()
}

// TestPendingSendIsOneCall: Send starts one engine call with every path,
// and empties the list.
func TestPendingSendIsOneCall(t *testing.T) {
	h := newHarness(t)
	p := makeFiles(t, "a.txt", "b.txt", "photos/")
	h.w.Drop(fileURIs(p[0]))
	h.w.Drop(fileURIs(p[1]))
	h.w.Drop(fileURIs(p[2]))
	test.Tap(h.w.send.pending.send)
	c := h.eng.next(t)
	if c.dir != dirSend || !slices.Equal(c.paths, p) {
		t.Fatalf("engine got %v %q, want send %q", c.dir, c.paths, p)
	}
	h.noCall()
	if len(h.w.jobs) != 1 {
		t.Errorf("%d transfers, want 1", len(h.w.jobs))
	}
	if h.w.send.pending.card.Visible() || !h.w.send.card.Visible() {
		t.Error("after Send the list still shows, or the code card does not")
	}
	if got := labelsIn(h.w.send.items); len(got) != 3 {
		t.Errorf("the send lists %q", got)
	}
}

// dropWhileCodeShown has a send show its code, drops more on the window
// and returns the first call and the new paths; the dialog is open.
func (h *harness) dropWhileCodeShown() (*call, []string, []string) {
	h.t.Helper()
	c := h.sendWithCode()
	more := makeFiles(h.t, "more.txt")
	h.w.Drop(fileURIs(more...))
	if findButton(h.w.win.Canvas(), "Add to current send") == nil {
		h.t.Fatal("no dialog asking whether to add to the current send")
	}
	if !slices.Contains(labelsInOverlays(h.w.win.Canvas()),
		"Add 1 item to the current send? It gets a new code: the code on show stops working.\n\n"+
			"Or start a new send of just this one, with its own code, and keep the current one.") {
		h.t.Errorf("the dialog says %q", labelsInOverlays(h.w.win.Canvas()))
	}
	h.noCall()
	return c, c.paths, more
}

// TestDropWhileCodeShownAdds: "Add to current send" cancels the send on
// show and sends everything under a new code; the old one leaves no
// history entry.
func TestDropWhileCodeShownAdds(t *testing.T) {
	h := newHarness(t)
	old, oldPaths, more := h.dropWhileCodeShown()
	test.Tap(findButton(h.w.win.Canvas(), "Add to current send"))
	select {
	case <-old.ctx.Done():
	default:
		t.Error("the old send still runs")
	}
	c := h.eng.next(t)
	if want := append(slices.Clone(oldPaths), more...); !slices.Equal(c.paths, want) {
		t.Fatalf("new send of %q, want %q", c.paths, want)
	}
	if h.w.send.code.Text != "…" {
		t.Errorf("the old code %q still shows", h.w.send.code.Text)
	}
	oldJob := h.w.jobs[0]
	h.until("the old send's end", func() bool { return oldJob.finalized })
	if got := oldJob.row.state.Text; got != textReplaced {
		t.Errorf("old row says %q, want %q", got, textReplaced)
	}
	if e := h.w.history.Entries(); len(e) != 0 {
		t.Errorf("history %+v, want none for the replaced send", e)
	}
	if len(h.w.send.pending.paths) != 0 {
		t.Errorf("pending %q", h.w.send.pending.paths)
	}
}

// TestDropWhileCodeShownNewSend: "New send" keeps the current send and
// sends the dropped files on their own.
func TestDropWhileCodeShownNewSend(t *testing.T) {
	h := newHarness(t)
	old, _, more := h.dropWhileCodeShown()
	test.Tap(findButton(h.w.win.Canvas(), "New send"))
	c := h.eng.next(t)
	if !slices.Equal(c.paths, more) {
		t.Fatalf("new send of %q, want %q", c.paths, more)
	}
	if old.ctx.Err() != nil {
		t.Error("New send canceled the current send")
	}
	if len(h.w.jobs) != 2 || h.w.send.job != h.w.jobs[1] {
		t.Error("the new send is not the one on show")
	}
}

// TestDropWhileCodeShownCancel: Cancel drops nothing.
func TestDropWhileCodeShownCancel(t *testing.T) {
	h := newHarness(t)
	old, _, _ := h.dropWhileCodeShown()
	test.Tap(findButton(h.w.win.Canvas(), "Cancel"))
	h.noCall()
	if old.ctx.Err() != nil || len(h.w.send.pending.paths) != 0 {
		t.Error("Cancel changed something")
	}
}

// TestDropAfterReceiverArrivedGathers: once a receiver reached the send,
// drops are gathered for the next send without asking; and a receiver
// arriving while the dialog is open keeps the send.
func TestDropAfterReceiverArrivedGathers(t *testing.T) {
	h := newHarness(t)
	old, _, more := h.dropWhileCodeShown()
	old.emit(transfer.Event{Kind: transfer.EventState, State: transfer.StateConnecting})
	h.until("connecting", func() bool { return h.w.send.state.Text == textConnecting })
	test.Tap(findButton(h.w.win.Canvas(), "Add to current send"))
	h.noCall()
	if old.ctx.Err() != nil {
		t.Fatal("the send was canceled after its receiver arrived")
	}
	if !slices.Equal(h.w.send.pending.paths, more) {
		t.Errorf("pending %q, want %q", h.w.send.pending.paths, more)
	}
	later := makeFiles(t, "later.txt")
	h.w.Drop(fileURIs(later...))
	if want := append(slices.Clone(more), later...); !slices.Equal(h.w.send.pending.paths, want) {
		t.Errorf("pending %q, want %q", h.w.send.pending.paths, want)
	}
	h.noCall()
}
