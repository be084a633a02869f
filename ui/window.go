package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"ferry/assets"
	"ferry/transfer"
)

// flushInterval is how often the window redraws transfers that changed:
// progress is coalesced to about 10 updates a second however often the
// engine reports.
const flushInterval = 100 * time.Millisecond

// quitWait bounds how long quitting waits for canceled transfers to save
// their partial files.
const quitWait = 3 * time.Second

// MainWindow is ferry's main window: Send, Receive, Transfers, History and
// Settings tabs over an Engine.
type MainWindow struct {
	app       fyne.App
	win       fyne.Window
	newEngine func(Settings) Engine
	settings  Settings
	history   *History

	// OpenFolder opens a folder in the platform's file manager; "Show in
	// folder" calls it. Tests replace it.
	OpenFolder func(dir string) error

	// post runs a function on the Fyne goroutine: fyne.Do, or a test queue.
	post     func(func())
	tick     time.Duration
	dirty    atomic.Bool // some job changed since the last flush
	queued   atomic.Bool // a flush is posted and has not run yet
	stopTick context.CancelFunc
	wg       sync.WaitGroup // running transfers
	closed   bool

	// Fyne goroutine only.
	jobs   []*job
	nextID int
	offers map[*job]*offerPrompt
	// textShown is the received text on show, if any.
	textShown *textDialog

	tabs        *container.AppTabs
	sendTab     *container.TabItem
	recvTab     *container.TabItem
	xferTab     *container.TabItem
	send        *sendView
	recv        *receiveView
	transfers   *fyne.Container // transfer rows
	noTransfers *widget.Label
	historyTab  *historyView
	settingsTab *settingsView
}

// options are the seams tests use.
type options struct {
	post        func(func()) // default fyne.Do
	tick        time.Duration
	historyName string
}

// Run builds the main window with settings from a.Preferences(), shows it
// and runs the app until it quits, then cancels what still runs and waits
// briefly for it. newEngine makes the engine for each transfer from the
// current settings (usually NewEngine). Paths, if any (files the desktop
// passed to the app), are sent at once. a should come from app.NewWithID
// so that preferences and the history can be stored.
func Run(a fyne.App, newEngine func(Settings) Engine, paths ...string) {
	run(a, newEngine, func(w *MainWindow) {
		if len(paths) > 0 {
			w.StartSend(paths)
		}
	})
}

// RunLink is Run for a share link the desktop passed (`ferry
// ferry://receive/CODE`): the window opens on the Receive tab filled in
// from the link, or saying why the link cannot be used (see OpenLink).
// Nothing is received until the user presses Receive and accepts.
func RunLink(a fyne.App, newEngine func(Settings) Engine, link string) {
	run(a, newEngine, func(w *MainWindow) { _ = w.OpenLink(link) })
}

// run builds the window, lets first act on it, shows it and runs the app.
func run(a fyne.App, newEngine func(Settings) Engine, first func(*MainWindow)) {
	if err := RegisterTranslations(); err != nil {
		fyne.LogError("the window stays in English", err)
	}
	a.SetIcon(assets.Icon)
	w := newMainWindow(a, newEngine, options{})
	first(w)
	w.win.ShowAndRun()
	w.shutdown()
}

// NewMainWindow builds the main window over a fixed engine, without
// showing it. Settings come from a.Preferences().
func NewMainWindow(a fyne.App, eng Engine) *MainWindow {
	return newMainWindow(a, func(Settings) Engine { return eng }, options{})
}

func newMainWindow(a fyne.App, newEngine func(Settings) Engine, o options) *MainWindow {
	if o.post == nil {
		o.post = fyne.Do
	}
	if o.tick <= 0 {
		o.tick = flushInterval
	}
	if o.historyName == "" {
		o.historyName = historyFile
	}
	w := &MainWindow{
		app:        a,
		newEngine:  newEngine,
		settings:   LoadSettings(a.Preferences()),
		OpenFolder: openFolder,
		post:       o.post,
		tick:       o.tick,
		offers:     map[*job]*offerPrompt{},
	}
	if w.settings.Theme != ThemeSystem { // the system's choice is Fyne's default
		applyTheme(a, w.settings.Theme)
	}
	w.win = a.NewWindow("ferry")
	w.win.SetIcon(assets.Icon)
	hist, histErr := LoadHistory(a.Storage(), o.historyName)
	w.history = hist

	w.send = newSendView(w)
	w.recv = newReceiveView(w)
	w.historyTab = newHistoryView(w)
	w.settingsTab = newSettingsView(w)
	w.noTransfers = widget.NewLabel(lang.X("transfers.empty", "No transfers yet. Send from the Send tab, or receive with a code."))
	w.noTransfers.Importance = widget.LowImportance
	w.noTransfers.Wrapping = fyne.TextWrapWord
	w.transfers = container.NewVBox()
	clearDone := widget.NewButtonWithIcon(lang.X("transfers.clearFinished", "Clear finished"), theme.ContentClearIcon(), w.clearFinished)

	w.sendTab = container.NewTabItemWithIcon(lang.X("tab.send", "Send"), theme.UploadIcon(), w.send.root)
	w.recvTab = container.NewTabItemWithIcon(lang.X("tab.receive", "Receive"), theme.DownloadIcon(), w.recv.root)
	w.xferTab = container.NewTabItemWithIcon(lang.X("tab.transfers", "Transfers"), theme.ListIcon(),
		container.NewBorder(nil, container.NewHBox(clearDone), nil, nil,
			container.NewVScroll(container.NewVBox(w.noTransfers, w.transfers))))
	w.tabs = container.NewAppTabs(
		w.sendTab,
		w.recvTab,
		w.xferTab,
		container.NewTabItemWithIcon(lang.X("tab.history", "History"), theme.HistoryIcon(), w.historyTab.root),
		container.NewTabItemWithIcon(lang.X("tab.settings", "Settings"), theme.SettingsIcon(), w.settingsTab.root),
	)
	w.win.SetContent(w.tabs)
	w.win.Resize(fyne.NewSize(640, 560))
	w.win.SetOnDropped(w.onDropped)
	w.win.SetCloseIntercept(w.RequestClose)
	w.setupTray()

	ctx, cancel := context.WithCancel(context.Background())
	w.stopTick = cancel
	go w.ticker(ctx)
	if histErr != nil {
		w.showError(histErr)
	}
	return w
}

// Window is the Fyne window.
func (w *MainWindow) Window() fyne.Window { return w.win }

// setupTray adds a system tray menu where the platform has one.
func (w *MainWindow) setupTray() {
	d, ok := w.app.(desktop.App)
	if !ok {
		return
	}
	show := func() {
		w.win.Show()
		w.win.RequestFocus()
	}
	d.SetSystemTrayMenu(fyne.NewMenu("ferry",
		fyne.NewMenuItem(lang.X("tray.show", "Show ferry"), show),
		fyne.NewMenuItem(lang.X("tray.send", "Send files…"), func() {
			show()
			w.tabs.Select(w.sendTab)
			w.pickFile()
		}),
		fyne.NewMenuItem(lang.X("tray.receive", "Receive…"), func() {
			show()
			w.tabs.Select(w.recvTab)
			w.win.Canvas().Focus(w.recv.entry)
		}),
	))
	d.SetSystemTrayIcon(assets.Icon)
}

// onDropped is the window's drop handler.
func (w *MainWindow) onDropped(_ fyne.Position, uris []fyne.URI) { w.Drop(uris) }

// Drop gathers the dropped files and folders for the next send (see
// AddPaths); other URIs are refused with a message. On the Fyne goroutine.
func (w *MainWindow) Drop(uris []fyne.URI) {
	var paths []string
	for _, u := range uris {
		if u == nil {
			continue
		}
		if u.Scheme() != "file" {
			w.showError(errors.New(lang.X("drop.notFile", "Only files and folders on this computer can be sent ({{.URI}})",
				vars{"URI": u.String()})))
			continue
		}
		paths = append(paths, u.Path())
	}
	w.AddPaths(paths)
}

// StartSend sends paths: the Send tab shows the code, the list and
// Cancel; the Transfers tab gets a row. On the Fyne goroutine.
func (w *MainWindow) StartSend(paths []string) {
	j := w.newJob(dirSend)
	j.paths = paths
	j.setNames(baseNames(paths), 0, 0)
	w.startSend(j, func(ctx context.Context, eng Engine, sink transfer.Sink) error {
		return eng.Send(ctx, paths, sink)
	})
}

// StartSendText sends text (see transfer.CheckText) as StartSend sends
// files: the Send tab shows the code and Cancel. On the Fyne goroutine.
func (w *MainWindow) StartSendText(text string) {
	j := w.newJob(dirSend)
	j.mu.Lock()
	j.s.isText, j.s.size = true, int64(len(text))
	j.mu.Unlock()
	j.total.Store(int64(len(text)))
	w.startSend(j, func(ctx context.Context, eng Engine, sink transfer.Sink) error {
		return eng.SendText(ctx, text, sink)
	})
}

// startSend shows the send j on the Send tab and in a row, and runs send
// with an engine made from the current settings.
func (w *MainWindow) startSend(j *job, send func(context.Context, Engine, transfer.Sink) error) {
	j.rendezvous = strings.TrimSpace(w.settings.Rendezvous)
	eng := w.newEngine(w.settings)
	w.addRow(j)
	w.send.show(j)
	w.tabs.Select(w.sendTab)
	w.start(j, func(ctx context.Context, sink transfer.Sink) error {
		return send(ctx, eng, sink)
	})
}

// StartReceive receives with a valid code into the download folder,
// through the server in Settings. On the Fyne goroutine.
func (w *MainWindow) StartReceive(code string) { w.startReceive(code, "") }

// startReceive is StartReceive through server (a share link's), or the
// server in Settings for "".
func (w *MainWindow) startReceive(code, server string) {
	j := w.newJob(dirReceive)
	j.code = code
	dir := w.settings.DownloadDir
	j.setOutDir(dir)
	settings := w.settings
	if server != "" {
		settings.Rendezvous = server
	}
	j.rendezvous = strings.TrimSpace(settings.Rendezvous)
	eng := w.newEngine(settings)
	_, late := eng.(LateOutDirEngine)
	req := ReceiveRequest{OutDir: dir, Accept: w.acceptFunc(j, late), AcceptText: w.acceptTextFunc(j)}
	if late {
		req.OutDirAfterAccept = j.outDir
	}
	w.addRow(j)
	w.tabs.Select(w.xferTab)
	w.start(j, func(ctx context.Context, sink transfer.Sink) error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return transfer.Errorf(transfer.KindNotFound, lang.X("receive.folderHint", "choose another download folder in Settings"),
				"%s: %v", lang.X("receive.folderError", "cannot use the download folder {{.Folder}}", vars{"Folder": dir}), err)
		}
		return eng.Receive(ctx, code, req, sink)
	})
}

func (w *MainWindow) newJob(d direction) *job {
	w.nextID++
	ctx, cancel := context.WithCancel(context.Background())
	return &job{id: w.nextID, dir: d, started: time.Now(), ctx: ctx, cancel: cancel}
}

// start runs the engine call for j on its own goroutine. Panics and
// errors end the job with a message; they never take the window down.
func (w *MainWindow) start(j *job, run func(context.Context, transfer.Sink) error) {
	w.jobs = append(w.jobs, j)
	sink := j.sinkFor(w.markDirty)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: %v", errPanic, r)
				}
			}()
			return run(j.ctx, sink)
		}()
		j.finish(err)
		j.cancel()
		j.dirty.Store(true)
		w.markDirty()
	}()
}

// markDirty asks the next tick to redraw; from any goroutine.
func (w *MainWindow) markDirty() { w.dirty.Store(true) }

// ticker posts at most one flush per tick, and only when something
// changed: the engine's events never reach fyne.Do one by one.
func (w *MainWindow) ticker(ctx context.Context) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.dirty.Load() && w.queued.CompareAndSwap(false, true) {
				w.post(func() {
					w.queued.Store(false)
					w.flush()
				})
			}
		}
	}
}

// flush redraws every job that changed; on the Fyne goroutine.
func (w *MainWindow) flush() {
	w.dirty.Store(false)
	now := time.Now()
	for _, j := range w.jobs {
		if !j.dirty.Swap(false) {
			continue
		}
		s := j.snap(now)
		if j.row != nil {
			j.row.update(j, s)
		}
		w.send.update(j, s)
		if text, ok := j.takeText(); ok {
			w.showText(text)
		}
		if s.finished && !j.finalized {
			j.finalized = true
			w.finalize(j, s)
		}
	}
}

// finalize records a finished transfer in the history and notifies.
func (w *MainWindow) finalize(j *job, s snapshot) {
	if p, ok := w.offers[j]; ok { // the engine ended while asking
		p.dismissed = true
		p.dialog.Hide()
	}
	// Of a text, only that it was one and its length: never its words.
	e := HistoryEntry{
		Time:      time.Now(),
		Direction: j.dir.String(),
		Names:     s.names,
		Files:     s.files,
		Bytes:     s.size,
		Text:      s.isText,
		Result:    s.result(),
		PathLabel: string(s.path),
	}
	if e.Result == ResultDone {
		e.Elapsed = s.elapsed
	}
	if e.Result == ResultFailed {
		e.Message = s.errMsg
	}
	switch j.dir {
	case dirReceive:
		if s.done && !s.isText {
			e.Folder = s.outDir
		}
	case dirSend:
		if len(j.paths) > 0 {
			e.Folder = filepath.Dir(j.paths[0])
		}
	}
	if !s.replaced { // its files went on with the send that replaced it
		if err := w.history.Add(e); err != nil {
			w.showError(err)
		}
		w.historyTab.rebuild()
	}

	if s.canceled {
		return // the user knows
	}
	finished := lang.X("notify.finished", "Transfer finished")
	v := vars{"What": s.what(), "Size": humanBytes(s.size), "Folder": s.outDir}
	var n *fyne.Notification
	switch {
	case s.done && s.isText && j.dir == dirSend:
		n = fyne.NewNotification(finished, lang.X("notify.sentText", "Sent {{.What}}", v))
	case s.done && s.isText:
		n = fyne.NewNotification(finished, lang.X("notify.receivedText", "Received {{.What}}", v))
	case s.done && j.dir == dirSend:
		n = fyne.NewNotification(finished, lang.X("notify.sent", "Sent {{.What}} ({{.Size}})", v))
	case s.done:
		n = fyne.NewNotification(finished, lang.X("notify.received", "Received {{.What}} ({{.Size}}) into {{.Folder}}", v))
	case s.declined:
		return
	default:
		n = fyne.NewNotification(lang.X("notify.failed", "Transfer failed"), s.errMsg)
	}
	w.app.SendNotification(n)
}

// cancelJob cancels a running transfer; on the Fyne goroutine.
func (w *MainWindow) cancelJob(j *job) {
	if !j.active() {
		return
	}
	j.userCanceled.Store(true)
	j.cancel()
	j.dirty.Store(true)
	w.markDirty()
}

// addRow puts j's row at the top of the Transfers tab.
func (w *MainWindow) addRow(j *job) {
	j.row = newTransferRow(j,
		func() { w.cancelJob(j) },
		func() { w.showInFolder(j.outDir()) },
		func() { w.removeRow(j) })
	j.row.update(j, j.snap(time.Now()))
	w.transfers.Objects = append([]fyne.CanvasObject{j.row.box}, w.transfers.Objects...)
	w.transfers.Refresh()
	w.noTransfers.Hide()
}

// removeRow drops a finished transfer from the Transfers tab.
func (w *MainWindow) removeRow(j *job) {
	if j.active() {
		return
	}
	w.transfers.Remove(j.row.box)
	for i, x := range w.jobs {
		if x == j {
			w.jobs = append(w.jobs[:i], w.jobs[i+1:]...)
			break
		}
	}
	if w.send.job == j {
		w.send.clear()
	}
	if len(w.transfers.Objects) == 0 {
		w.noTransfers.Show()
	}
}

// clearFinished removes every finished transfer's row.
func (w *MainWindow) clearFinished() {
	for _, j := range append([]*job(nil), w.jobs...) {
		if j.finalized {
			w.removeRow(j)
		}
	}
}

// activeCount is the number of transfers still running.
func (w *MainWindow) activeCount() int {
	n := 0
	for _, j := range w.jobs {
		if j.active() {
			n++
		}
	}
	return n
}

// RequestClose is the window's close intercept: with transfers running it
// asks before canceling them and quitting.
func (w *MainWindow) RequestClose() {
	n := w.activeCount()
	if n == 0 {
		w.close()
		return
	}
	msg := lang.XN("quit.running", "{{.Count}} transfers are still running. Quit and cancel them?", n, vars{"Count": n})
	d := dialog.NewConfirm(lang.X("quit.title", "Quit ferry?"), msg, func(ok bool) {
		if ok {
			w.cancelAll()
			w.close()
		}
	}, w.win)
	d.SetConfirmText(lang.X("quit.confirm", "Quit"))
	d.SetDismissText(lang.X("quit.keepGoing", "Keep going"))
	d.SetConfirmImportance(widget.DangerImportance)
	d.Show()
}

// cancelAll cancels every running transfer.
func (w *MainWindow) cancelAll() {
	for _, j := range w.jobs {
		w.cancelJob(j)
	}
	if c := w.settingsTab.netcheck.cancel; c != nil {
		c()
	}
}

// close stops the ticker and closes the window (which quits the app when
// it is the main one).
func (w *MainWindow) close() {
	if w.closed {
		return
	}
	w.closed = true
	w.stopTick()
	w.win.Close()
}

// shutdown runs after the app stopped: it cancels what still runs and
// gives the engine a moment to keep its partial files consistent.
func (w *MainWindow) shutdown() {
	w.stopTick()
	for _, j := range w.jobs {
		j.userCanceled.Store(true)
		j.cancel()
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(quitWait):
	}
}

// showError shows err in a dialog; on the Fyne goroutine.
func (w *MainWindow) showError(err error) {
	dialog.ShowError(fmt.Errorf("%s", errorMessage(err)), w.win)
}

// listableDir returns dir as a folder location for dialogs, or nil.
func listableDir(dir string) fyne.ListableURI {
	if dir == "" {
		return nil
	}
	l, err := storage.ListerForURI(storage.NewFileURI(dir))
	if err != nil {
		return nil
	}
	return l
}
