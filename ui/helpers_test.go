package ui

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"ferry/transfer"
)

func TestMain(m *testing.M) {
	useLocale("en_US.UTF-8")
	os.Exit(m.Run())
}

// useLocale makes loc the system locale and registers the app's
// translations again, so that Fyne picks the language anew from the
// environment. Not for parallel tests: the language is process-wide.
func useLocale(loc string) {
	for _, v := range []string{"LANGUAGE", "LC_ALL", "LC_MESSAGES"} {
		os.Unsetenv(v)
	}
	os.Setenv("LANG", loc)
	if err := RegisterTranslations(); err != nil {
		panic(err)
	}
}

// queue stands in for fyne.Do: the window posts work to it and the test
// goroutine runs it, so every widget call happens on the test goroutine.
type queue struct {
	mu     sync.Mutex
	fns    []func()
	posts  atomic.Int64
	signal chan struct{}
}

func newQueue() *queue { return &queue{signal: make(chan struct{}, 1)} }

func (q *queue) post(f func()) {
	q.posts.Add(1)
	q.mu.Lock()
	q.fns = append(q.fns, f)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) drain() {
	for {
		q.mu.Lock()
		fns := q.fns
		q.fns = nil
		q.mu.Unlock()
		if len(fns) == 0 {
			return
		}
		for _, f := range fns {
			f()
		}
	}
}

// until runs posted work until cond holds, failing after a while.
func (q *queue) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		q.drain()
		if cond() {
			return
		}
		select {
		case <-q.signal:
		case <-time.After(2 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// call is one Send or Receive on the fake engine. The test drives it:
// events through sink, the end through ret.
type call struct {
	dir   direction
	paths []string
	text  string // SendText
	code  string
	req   ReceiveRequest
	ctx   context.Context
	sink  transfer.Sink
	ret   chan error
}

// emit sends events as the engine would, from the engine's side.
func (c *call) emit(events ...transfer.Event) {
	for _, e := range events {
		c.sink(e)
	}
}

// fakeEngine records calls and blocks each until the test ends it or its
// context is canceled.
type fakeEngine struct {
	calls chan *call
	panic bool
}

func newFakeEngine() *fakeEngine { return &fakeEngine{calls: make(chan *call, 16)} }

func (f *fakeEngine) run(c *call) error {
	c.ret = make(chan error, 1)
	f.calls <- c
	if f.panic {
		panic("boom")
	}
	select {
	case err := <-c.ret:
		return err
	case <-c.ctx.Done():
		return transfer.Errorf(transfer.KindCanceled, "", "transfer: %v", c.ctx.Err())
	}
}

func (f *fakeEngine) Send(ctx context.Context, paths []string, sink transfer.Sink) error {
	return f.run(&call{dir: dirSend, paths: paths, ctx: ctx, sink: sink})
}

func (f *fakeEngine) SendText(ctx context.Context, text string, sink transfer.Sink) error {
	return f.run(&call{dir: dirSend, text: text, ctx: ctx, sink: sink})
}

func (f *fakeEngine) Receive(ctx context.Context, code string, req ReceiveRequest, sink transfer.Sink) error {
	return f.run(&call{dir: dirReceive, code: code, req: req, ctx: ctx, sink: sink})
}

// lateEngine also reads the folder after the offer is accepted.
type lateEngine struct{ *fakeEngine }

func (lateEngine) ReadsOutDirAfterAccept() {}

func (f *fakeEngine) next(t *testing.T) *call {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the engine was not called")
		return nil
	}
}

// harness is a window over a fake engine with a test queue.
type harness struct {
	t   *testing.T
	app fyne.App
	eng *fakeEngine
	q   *queue
	w   *MainWindow
	dl  string // download folder

	engineSettings Settings // what h.w last made an engine with
}

// historyName is a per-test history file: the test app's storage is a
// shared folder under the system temp dir.
func historyName(t *testing.T) string {
	r := strings.NewReplacer("/", "_", " ", "_")
	return fmt.Sprintf("ferry-test-%d-%s.json", os.Getpid(), r.Replace(t.Name()))
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with preferences set before the window is
// made.
func newHarnessWith(t *testing.T, prefs map[string]string) *harness {
	t.Helper()
	a := test.NewTempApp(t)
	h := &harness{t: t, app: a, eng: newFakeEngine(), q: newQueue(), dl: t.TempDir()}
	a.Preferences().SetString(prefDownloadDir, h.dl)
	for k, v := range prefs {
		a.Preferences().SetString(k, v)
	}
	name := historyName(t)
	t.Cleanup(func() { _ = a.Storage().Remove(name) })
	h.w = h.open(func(s Settings) Engine { h.engineSettings = s; return h.eng })
	return h
}

// open makes another window on the same app, storage and preferences.
func (h *harness) open(eng func(Settings) Engine) *MainWindow {
	h.t.Helper()
	w := newMainWindow(h.app, eng, options{post: h.q.post, tick: 5 * time.Millisecond, historyName: historyName(h.t)})
	w.OpenFolder = func(string) error { return fmt.Errorf("OpenFolder not expected") }
	h.t.Cleanup(func() {
		w.stopTick()
		w.cancelAll()
		w.wg.Wait()
		h.q.drain()
		w.close()
	})
	return w
}

// until waits for cond, running posted work.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	h.q.until(h.t, what, cond)
}

// jobRow is the row of the newest transfer.
func (h *harness) jobRow() *transferRow {
	h.t.Helper()
	if len(h.w.jobs) == 0 {
		h.t.Fatal("no transfer")
	}
	return h.w.jobs[len(h.w.jobs)-1].row
}

// waitState waits for the newest transfer's state text.
func (h *harness) waitState(want string) {
	h.t.Helper()
	r := h.jobRow()
	h.until(fmt.Sprintf("state %q (have %q)", want, r.state.Text), func() bool { return r.state.Text == want })
}

// waitEnd waits until the newest transfer ended (its history entry
// written, its notification sent) with state text want.
func (h *harness) waitEnd(want string) {
	h.t.Helper()
	j := h.w.jobs[len(h.w.jobs)-1]
	h.until(fmt.Sprintf("the end with %q (have %q)", want, j.row.state.Text), func() bool {
		return j.finalized && j.row.state.Text == want
	})
}

// findButton finds a visible button by its text in the window's overlays
// (dialogs).
func findButton(c fyne.Canvas, text string) *widget.Button {
	for _, o := range c.Overlays().List() {
		if b := findButtonIn(o, text); b != nil {
			return b
		}
	}
	return nil
}

// findButtonIn finds a visible button by its text under o.
func findButtonIn(o fyne.CanvasObject, text string) *widget.Button {
	var found *widget.Button
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if found != nil || o == nil || !o.Visible() {
			return
		}
		switch x := o.(type) {
		case *widget.Button:
			if x.Text == text {
				found = x
			}
			return
		case *fyne.Container:
			for _, c := range x.Objects {
				walk(c)
			}
			return
		}
		if wid, ok := o.(fyne.Widget); ok {
			for _, c := range test.WidgetRenderer(wid).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return found
}

// labelsInOverlays collects the text of every visible label in the
// window's overlays (dialogs).
func labelsInOverlays(c fyne.Canvas) []string {
	var out []string
	for _, o := range c.Overlays().List() {
		out = append(out, labelsIn(o)...)
	}
	return out
}

// labelsIn collects the text of every visible label under o.
func labelsIn(o fyne.CanvasObject) []string {
	var out []string
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil || !o.Visible() {
			return
		}
		switch x := o.(type) {
		case *widget.Label:
			out = append(out, x.Text)
			return
		case *fyne.Container:
			for _, c := range x.Objects {
				walk(c)
			}
			return
		}
		if wid, ok := o.(fyne.Widget); ok {
			for _, c := range test.WidgetRenderer(wid).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}
