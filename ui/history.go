package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"ferry/transfer"
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
	Folder  string `json:"folder,omitempty"`
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
	// Path is the path in English words, as entries written before
	// PathLabel have it; PathLabel is the engine's label (e.g.
	// "direct-udp"), drawn in the window's language.
	Path      string        `json:"path,omitempty"`
	PathLabel string        `json:"path_label,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns,omitempty"`
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
		return h, fmt.Errorf("%s: %w", lang.X("history.readError", "Could not read the transfer history"), err)
	}
	if len(b) == 0 {
		return h, nil
	}
	var doc historyDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return h, fmt.Errorf("%s: %w", lang.X("history.damaged", "The transfer history is damaged and was reset"), err)
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
	if err == nil {
		_, err = wc.Write(b)
		if cerr := wc.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", lang.X("history.saveError", "Could not save the transfer history"), err)
	}
	return nil
}

// entrySummary is the first line of a history row.
func entrySummary(e HistoryEntry) string {
	what := namesSummary(e.Names)
	switch {
	case e.Text:
		what = lang.X("history.aText", "a text")
	case what == "":
		what = lang.X("history.files", "files")
	}
	v := vars{"What": what}
	recv := e.Direction == "receive"
	switch {
	case e.Result == ResultDone && recv:
		return lang.X("history.received", "Received {{.What}}", v)
	case e.Result == ResultDone:
		return lang.X("history.sent", "Sent {{.What}}", v)
	case e.Result == ResultCanceled && recv:
		return lang.X("history.receiveCanceled", "Receiving {{.What}} — canceled", v)
	case e.Result == ResultCanceled:
		return lang.X("history.sendCanceled", "Sending {{.What}} — canceled", v)
	case e.Result == ResultDeclined:
		return lang.X("history.declined", "Declined {{.What}}", v)
	case recv:
		return lang.X("history.receiveFailed", "Receiving {{.What}} failed", v)
	}
	return lang.X("history.sendFailed", "Sending {{.What}} failed", v)
}

// entryDetail is the second line of a history row.
func entryDetail(e HistoryEntry) string {
	s := e.Time.Local().Format(lang.X("history.timeLayout", "2 Jan 2006 15:04"))
	if e.Result == ResultDone {
		if e.Text {
			s += " · " + lang.XN("history.textBytes", "Text, {{.Count}} bytes", int(e.Bytes), vars{"Count": e.Bytes})
		} else {
			s += " · " + lang.XN("history.filesSize", "{{.Count}} files, {{.Size}}", e.Files,
				vars{"Count": e.Files, "Size": humanBytes(e.Bytes)})
		}
		if e.Elapsed > 0 {
			s += " " + lang.X("history.elapsed", "in {{.Time}}", vars{"Time": humanElapsed(e.Elapsed)})
		}
		if p := entryPath(e); p != "" {
			s += " · " + p
		}
	}
	if e.Message != "" {
		s += " · " + e.Message
	}
	return s
}

// entryPath is the entry's path in the window's words; entries written
// before PathLabel existed kept the words of their day.
func entryPath(e HistoryEntry) string {
	if e.PathLabel != "" {
		return pathWords(transfer.PathLabel(e.PathLabel))
	}
	return e.Path
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
	v.empty = widget.NewLabel(lang.X("history.empty", "Finished transfers will be listed here."))
	v.empty.Importance = widget.LowImportance
	v.clear = widget.NewButtonWithIcon(lang.X("history.clear", "Clear history"), theme.DeleteIcon(), func() {
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
	r.show = widget.NewButtonWithIcon(lang.X("button.showInFolder", "Show in folder"), theme.FolderOpenIcon(), func() {
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
		w.showError(fmt.Errorf("%s: %w", lang.X("history.openError", "Could not open {{.Folder}}", vars{"Folder": dir}), err))
	}
}

// openFolder opens dir in the platform's file manager.
func openFolder(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return errors.New(lang.X("history.folderGone", "the folder no longer exists"))
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
