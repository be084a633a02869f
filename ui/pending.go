package ui

import (
	"path/filepath"
	"slices"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"ferry/transfer"
)

// pendingList is the Send tab's send in the making: what picks and drops
// gathered, each with a remove button, then Clear and Send. One Send makes
// one code for all of it. On the Fyne goroutine only.
type pendingList struct {
	paths []string // in the order added, without duplicates
	card  *fyne.Container
	title *widget.Label
	rows  *fyne.Container
	send  *widget.Button
	clear *widget.Button
}

func newPendingList(onSend func()) *pendingList {
	p := &pendingList{}
	p.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.rows = container.NewVBox()
	p.send = widget.NewButtonWithIcon(lang.X("pending.send", "Send"), theme.MailSendIcon(), onSend)
	p.send.Importance = widget.HighImportance
	p.clear = widget.NewButtonWithIcon(lang.X("pending.clear", "Clear"), theme.ContentClearIcon(), func() { p.set(nil) })
	p.card = container.NewVBox(
		widget.NewSeparator(),
		p.title,
		p.rows,
		container.NewHBox(layout.NewSpacer(), p.clear, p.send),
	)
	p.card.Hide()
	return p
}

// add appends the paths not already listed.
func (p *pendingList) add(paths []string) {
	p.set(mergePaths(p.paths, paths))
}

// remove takes path off the list.
func (p *pendingList) remove(path string) {
	p.set(slices.DeleteFunc(slices.Clone(p.paths), func(x string) bool { return x == path }))
}

// take empties the list and returns what it held.
func (p *pendingList) take() []string {
	paths := p.paths
	p.set(nil)
	return paths
}

// set shows paths as the list; the card hides when it is empty.
func (p *pendingList) set(paths []string) {
	p.paths = paths
	objs := make([]fyne.CanvasObject, 0, min(len(paths), maxListedItems)+1)
	for i, path := range paths {
		if i == maxListedItems {
			objs = append(objs, widget.NewLabel(andMore(len(paths)-i)))
			break
		}
		remove := widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { p.remove(path) })
		remove.Importance = widget.LowImportance
		objs = append(objs, container.NewBorder(nil, nil, nil, remove, itemLabel(path)))
	}
	p.rows.Objects = objs
	p.rows.Refresh()
	p.title.SetText(lang.XN("pending.title", "Ready to send: {{.Count}} items", len(paths), vars{"Count": len(paths)}))
	if len(paths) == 0 {
		p.card.Hide()
	} else {
		p.card.Show()
	}
}

// mergePaths is have followed by the paths of add it lacks, each cleaned.
func mergePaths(have, add []string) []string {
	out := slices.Clone(have)
	for _, p := range add {
		p = filepath.Clean(p)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// AddPaths gathers paths (picked or dropped) for the next send. While the
// Send tab shows a send of files that no receiver has reached yet, and
// nothing else is gathered, it asks whether to add them to that send or
// start a new one. On the Fyne goroutine.
func (w *MainWindow) AddPaths(paths []string) {
	if len(paths) == 0 {
		return
	}
	w.tabs.Select(w.sendTab)
	v := w.send
	if j := v.job; j != nil && len(v.pending.paths) == 0 && replaceable(j) {
		w.askAddOrNew(j, paths)
		return
	}
	v.pending.add(paths)
}

// replaceable reports whether the send j could still take more files: it
// sends files, runs, and no receiver has reached it. The engine cannot add
// to an offer once made, so adding means canceling j and sending again
// under a new code; after pairing that would cut off a receiver.
func replaceable(j *job) bool {
	if j.dir != dirSend || len(j.paths) == 0 || j.userCanceled.Load() {
		return false
	}
	s := j.snap(time.Now())
	if s.finished || s.isText {
		return false
	}
	switch s.state {
	case "", transfer.StateHashing, transfer.StateWaiting:
		return true
	}
	return false
}

// askAddOrNew asks what to do with paths dropped while j's code is shown:
// add them to j (a new send of everything, under a new code), send them on
// their own, or drop nothing.
func (w *MainWindow) askAddOrNew(j *job, paths []string) {
	msg := widget.NewLabel(lang.XN("addOrNew.message",
		"Add {{.Count}} items to the current send? It gets a new code: the code on show stops working.\n\n"+
			"Or start a new send of just these, with its own code, and keep the current one.",
		len(paths), vars{"Count": len(paths)}))
	msg.Wrapping = fyne.TextWrapWord
	var d *dialog.CustomDialog
	cancel := widget.NewButtonWithIcon(lang.X("button.cancel", "Cancel"), theme.CancelIcon(), func() { d.Hide() })
	newSend := widget.NewButtonWithIcon(lang.X("addOrNew.new", "New send"), theme.MailSendIcon(), func() {
		d.Hide()
		w.StartSend(mergePaths(nil, paths))
	})
	add := widget.NewButtonWithIcon(lang.X("addOrNew.add", "Add to current send"), theme.ContentAddIcon(), func() {
		d.Hide()
		if !replaceable(j) {
			// A receiver arrived while the dialog was open: keep that
			// send, gather these for the next.
			w.send.pending.add(paths)
			dialog.ShowInformation(lang.X("addOrNew.lateTitle", "Not added"),
				lang.X("addOrNew.late", "A receiver connected to the current send meanwhile, so it was left as it is. "+
					"The new items wait in the list: press Send for them."), w.win)
			return
		}
		w.replaceSend(j, paths)
	})
	add.Importance = widget.HighImportance
	d = dialog.NewCustomWithoutButtons(lang.X("addOrNew.title", "Add to the current send?"), msg, w.win)
	d.SetButtons([]fyne.CanvasObject{cancel, newSend, add})
	d.Resize(fyne.NewSize(460, 0).Max(d.MinSize()))
	d.Show()
}

// replaceSend cancels j and sends its paths and more under a new code.
// j ends as "Replaced by a new send" and leaves no history entry: its
// files go with the new send.
func (w *MainWindow) replaceSend(j *job, more []string) {
	j.replaced.Store(true)
	w.cancelJob(j)
	w.StartSend(mergePaths(j.paths, more))
}

// sendPending starts one send of everything gathered.
func (v *sendView) sendPending() {
	if paths := v.pending.take(); len(paths) > 0 {
		v.w.StartSend(paths)
	}
}
