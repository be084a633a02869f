package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// historyFile is the history's name in App.Storage().
const historyFile = "history.json"

// Results of a finished transfer.
const (
	ResultDone     = "done"
	ResultFailed   = "failed"
	ResultCanceled = "canceled"
	ResultDeclined = "declined"
)

// HistoryEntry is one finished transfer.
type HistoryEntry struct {
	Time time.Time `json:"time"`
	// Direction is "send" or "receive".
	Direction string   `json:"direction"`
	Names     []string `json:"names,omitempty"`
	Files     int      `json:"files,omitempty"`
	Bytes     int64    `json:"bytes,omitempty"`
	// Folder is where received files were saved, or where sent ones came
	// from: what "Show in folder" opens.
	Folder  string        `json:"folder,omitempty"`
	Result  string        `json:"result"`
	Message string        `json:"message,omitempty"`
	Path    string        `json:"path,omitempty"` // path in words
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	// Text: a text of Bytes bytes, not files. What it said is not kept.
	Text bool `json:"text,omitempty"`
}

// History is the list of finished transfers, newest first, kept as JSON in
// an app's storage. Its methods run on the Fyne goroutine.
type History struct {
	store   fyne.Storage
	name    string
	entries []HistoryEntry
}

type historyDoc struct {
	Version int            `json:"v"`
	Entries []HistoryEntry `json:"entries"`
}

// LoadHistory reads the history from store; a missing file is an empty
// history. On a damaged file it returns an empty history and the error.
func LoadHistory(store fyne.Storage, name string) (*History, error) {
	h := &History{store: store, name: name}
	if store == nil {
		return h, nil
	}
	r, err := store.Open(name)
	if err != nil {
		// Missing (the first run) or no storage at all (an app made
		// without an ID): start empty.
		return h, nil
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return h, fmt.Errorf("read the transfer history: %w", err)
	}
	if len(b) == 0 {
		return h, nil
	}
	var doc historyDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return h, fmt.Errorf("the transfer history is damaged and was reset: %w", err)
	}
	h.entries = doc.Entries
	if len(h.entries) > historyMaxEntries {
		h.entries = h.entries[:historyMaxEntries]
	}
	return h, nil
}

// Entries returns the entries, newest first.
func (h *History) Entries() []HistoryEntry { return h.entries }

// Add records e as the newest entry and saves.
func (h *History) Add(e HistoryEntry) error {
	h.entries = append([]HistoryEntry{e}, h.entries...)
	if len(h.entries) > historyMaxEntries {
		h.entries = h.entries[:historyMaxEntries]
	}
	return h.save()
}

// Clear forgets every entry and saves.
func (h *History) Clear() error {
	h.entries = nil
	return h.save()
}

func (h *History) save() error {
	if h.store == nil {
		return nil
	}
	b, err := json.MarshalIndent(historyDoc{Version: 1, Entries: h.entries}, "", "  ")
	if err != nil {
		return err
	}
	wc, err := h.store.Save(h.name)
	if err != nil {
		wc, err = h.store.Create(h.name)
	}
	if err != nil {
		return fmt.Errorf("save the transfer history: %w", err)
	}
	if _, err := wc.Write(b); err != nil {
		wc.Close()
		return fmt.Errorf("save the transfer history: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("save the transfer history: %w", err)
	}
	return nil
}

// entrySummary is the first line of a history row.
func entrySummary(e HistoryEntry) string {
	verb, doing := "Sent", "Sending"
	if e.Direction == "receive" {
		verb, doing = "Received", "Receiving"
	}
	what := namesSummary(e.Names)
	switch {
	case e.Text:
		what = "a text"
	case what == "":
		what = "files"
	}
	switch e.Result {
	case ResultDone:
		return verb + " " + what
	case ResultCanceled:
		return doing + " " + what + " — canceled"
	case ResultDeclined:
		return "Declined " + what
	}
	return doing + " " + what + " failed"
}

// entryDetail is the second line of a history row.
func entryDetail(e HistoryEntry) string {
	s := e.Time.Local().Format("2 Jan 2006 15:04")
	if e.Result == ResultDone {
		if e.Text {
			s += " · Text, " + plural(int(e.Bytes), "byte")
		} else {
			s += " · " + plural(e.Files, "file") + ", " + humanBytes(e.Bytes)
		}
		if e.Elapsed > 0 {
			s += " in " + humanElapsed(e.Elapsed)
		}
		if e.Path != "" {
			s += " · " + e.Path
		}
	}
	if e.Message != "" {
		s += " · " + e.Message
	}
	return s
}

// historyRow is one row of the History tab.
type historyRow struct {
	entry   HistoryEntry
	summary *widget.Label
	detail  *widget.Label
	show    *widget.Button
	box     *fyne.Container
}

// historyView is the History tab.
type historyView struct {
	w     *MainWindow
	root  fyne.CanvasObject
	list  *fyne.Container
	empty *widget.Label
	clear *widget.Button
	rows  []*historyRow
}

func newHistoryView(w *MainWindow) *historyView {
	v := &historyView{w: w}
	v.list = container.NewVBox()
	v.empty = widget.NewLabel("Finished transfers will be listed here.")
	v.empty.Importance = widget.LowImportance
	v.clear = widget.NewButtonWithIcon("Clear history", theme.DeleteIcon(), func() {
		if err := w.history.Clear(); err != nil {
			w.showError(err)
		}
		v.rebuild()
	})
	v.root = container.NewBorder(nil, container.NewHBox(v.clear), nil, nil,
		container.NewVScroll(container.NewVBox(v.empty, v.list)))
	v.rebuild()
	return v
}

// rebuild redraws the rows from the history.
func (v *historyView) rebuild() {
	entries := v.w.history.Entries()
	v.rows = v.rows[:0]
	objs := make([]fyne.CanvasObject, 0, len(entries))
	for _, e := range entries {
		r := v.newRow(e)
		v.rows = append(v.rows, r)
		objs = append(objs, r.box)
	}
	v.list.Objects = objs
	v.list.Refresh()
	if len(entries) == 0 {
		v.empty.Show()
		v.clear.Disable()
	} else {
		v.empty.Hide()
		v.clear.Enable()
	}
}

func (v *historyView) newRow(e HistoryEntry) *historyRow {
	r := &historyRow{entry: e}
	r.summary = widget.NewLabelWithStyle(entrySummary(e), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	r.summary.Truncation = fyne.TextTruncateEllipsis
	r.detail = widget.NewLabel(entryDetail(e))
	r.detail.Wrapping = fyne.TextWrapWord
	if e.Result == ResultFailed {
		r.detail.Importance = widget.DangerImportance
	}
	icon := widget.NewIcon(theme.UploadIcon())
	if e.Direction == "receive" {
		icon.SetResource(theme.DownloadIcon())
	}
	r.show = widget.NewButtonWithIcon("Show in folder", theme.FolderOpenIcon(), func() {
		v.w.showInFolder(e.Folder)
	})
	if e.Folder == "" {
		r.show.Hide()
	}
	r.box = container.NewBorder(nil, widget.NewSeparator(), icon, container.NewCenter(r.show),
		container.NewVBox(r.summary, r.detail))
	return r
}

// showInFolder opens dir in the file manager, reporting failures.
func (w *MainWindow) showInFolder(dir string) {
	if dir == "" {
		return
	}
	if err := w.OpenFolder(dir); err != nil {
		w.showError(fmt.Errorf("could not open %s: %w", dir, err))
	}
}

// openFolder opens dir in the platform's file manager.
func openFolder(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("the folder no longer exists")
	}
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", dir)
	case "windows":
		cmd = exec.Command("explorer", dir)
	default:
		cmd = exec.Command("xdg-open", dir)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() //nolint:errcheck // explorer exits 1 on success; nothing to report
	return nil
}
