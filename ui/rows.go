package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// transferRow is one transfer in the Transfers tab: what, state, progress
// bar, bytes, rate, ETA and path, with Cancel and Show in folder.
type transferRow struct {
	box      *fyne.Container
	icon     *widget.Icon
	title    *widget.Label
	state    *widget.Label
	progress *widget.ProgressBar
	size     *widget.Label // "12 MB of 100 MB"
	rate     *widget.Label // "5.0 MB/s"
	eta      *widget.Label // "ETA 18s"
	path     *widget.Label // "Direct"
	cancel   *widget.Button
	show     *widget.Button
	remove   *widget.Button
}

func newTransferRow(j *job, onCancel, onShow, onRemove func()) *transferRow {
	r := &transferRow{}
	r.icon = widget.NewIcon(theme.UploadIcon())
	if j.dir == dirReceive {
		r.icon.SetResource(theme.DownloadIcon())
	}
	r.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	r.title.Truncation = fyne.TextTruncateEllipsis
	r.state = widget.NewLabel("")
	r.state.Wrapping = fyne.TextWrapWord
	r.progress = widget.NewProgressBar()
	r.size = widget.NewLabel("")
	r.rate = widget.NewLabel("")
	r.eta = widget.NewLabel("")
	r.path = widget.NewLabel("")
	r.path.Importance = widget.LowImportance
	r.cancel = widget.NewButtonWithIcon(lang.X("button.cancel", "Cancel"), theme.CancelIcon(), onCancel)
	r.show = widget.NewButtonWithIcon(lang.X("button.showInFolder", "Show in folder"), theme.FolderOpenIcon(), onShow)
	r.show.Hide()
	r.remove = widget.NewButtonWithIcon("", theme.DeleteIcon(), onRemove)
	r.remove.Hide()

	details := container.NewHBox(r.size, r.rate, r.eta, r.path)
	buttons := container.NewHBox(r.show, r.cancel, r.remove)
	top := container.NewBorder(nil, nil, r.icon, buttons, r.title)
	r.box = container.NewVBox(top, r.state, r.progress, details, widget.NewSeparator())
	return r
}

// update draws s; on the Fyne goroutine.
func (r *transferRow) update(j *job, s snapshot) {
	setText(r.title, rowTitle(j, s))
	setText(r.state, s.stateText(j.dir))
	switch {
	case s.finished && !s.done:
		r.state.Importance = widget.DangerImportance
		if s.canceled || s.declined {
			r.state.Importance = widget.WarningImportance
		}
	case s.done:
		r.state.Importance = widget.SuccessImportance
	default:
		r.state.Importance = widget.MediumImportance
	}
	r.state.Refresh()

	var v float64
	if s.total > 0 {
		v = float64(s.bytes) / float64(s.total)
	}
	if s.done {
		v = 1
	}
	if r.progress.Value != v {
		r.progress.SetValue(min(max(v, 0), 1))
	}
	if s.finished && !s.done && s.bytes == 0 {
		r.progress.Hide() // nothing moved: the bar would only say 0%
	}
	switch {
	case s.total > 0:
		setText(r.size, lang.X("row.progress", "{{.Done}} of {{.Total}}", vars{"Done": humanBytes(s.bytes), "Total": humanBytes(s.total)}))
	case s.bytes > 0:
		setText(r.size, humanBytes(s.bytes))
	default:
		setText(r.size, "")
	}
	if s.finished && !s.done {
		setText(r.rate, "")
	} else {
		setText(r.rate, humanRate(s.rate))
	}
	if s.finished {
		setText(r.eta, "")
	} else {
		setText(r.eta, humanETA(s.eta))
	}
	setText(r.path, pathWords(s.path))

	if s.finished {
		r.cancel.Hide()
		r.remove.Show()
		if s.done && j.dir == dirReceive && s.outDir != "" && !s.isText {
			r.show.Show()
		}
	}
}

// rowTitle is "Send report.pdf and 2 more" / "Receive a text of 42 bytes"
// / "Receive with code 7-tiger-tomorrow".
func rowTitle(j *job, s snapshot) string {
	if j.dir == dirSend {
		return lang.X("row.send", "Send {{.What}}", vars{"What": s.what()})
	}
	if len(s.names) > 0 || s.isText {
		return lang.X("row.receive", "Receive {{.What}}", vars{"What": s.what()})
	}
	return lang.X("row.receiveCode", "Receive with code {{.Code}}", vars{"Code": j.code})
}

// setText changes a label's text only when it differs, sparing a refresh.
func setText(l *widget.Label, s string) {
	if l.Text != s {
		l.SetText(s)
	}
}
