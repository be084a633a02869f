package ui

import (
	"image"
	"os"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"ferry/discovery/code"
	"ferry/ui/qr"
)

// codeTextSize is the share code's size: large enough to read aloud from
// across a desk.
const codeTextSize = 34

// qrSize is the QR code's size on screen, quiet zone included: about 4
// points a module for a share link (37 to 45 modules), which a phone
// reads from arm's length.
const qrSize = 180

// qrScale is the pixels per module of the QR image; canvas scales it
// without smoothing, so this only needs to be an integer.
const qrScale = 4

// sendView is the Send tab: a drop hint and pickers, then the current
// send's code, Copy, state, the list of what is sent and Cancel.
type sendView struct {
	w    *MainWindow
	root fyne.CanvasObject

	addFiles  *widget.Button
	addFolder *widget.Button
	text      *widget.Entry  // a text to send instead of files
	sendText  *widget.Button // sends it
	pending   *pendingList   // what the next send will carry

	card     *fyne.Container // hidden until the first send
	code     *canvas.Text
	copy     *widget.Button
	copyLink *widget.Button
	link     *widget.Label // the share link, hidden without one
	qr       *canvas.Image // the link's QR code, hidden without one
	shown    string        // the link on show, "" for none
	state    *widget.Label
	items    *fyne.Container // one label per item
	cancel   *widget.Button
	another  *widget.Button

	job *job // the send on show
}

func newSendView(w *MainWindow) *sendView {
	v := &sendView{w: w}
	v.addFiles = widget.NewButtonWithIcon(lang.X("send.addFiles", "Add files…"), theme.FileIcon(), w.pickFile)
	v.addFolder = widget.NewButtonWithIcon(lang.X("send.addFolder", "Add folder…"), theme.FolderIcon(), w.pickFolder)
	hint := widget.NewLabelWithStyle(lang.X("send.hint", "Drop files or folders anywhere in this window, or add them here, then press Send"),
		fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	hint.Wrapping = fyne.TextWrapWord
	icon := widget.NewIcon(theme.UploadIcon())
	v.text = widget.NewMultiLineEntry()
	v.text.SetPlaceHolder(lang.X("send.textPlaceholder", "Or type or paste a text to send (up to 1 MiB)"))
	v.text.Wrapping = fyne.TextWrapWord
	v.text.SetMinRowsVisible(3)
	v.sendText = widget.NewButtonWithIcon(lang.X("send.sendText", "Send text"), theme.MailSendIcon(), v.submitText)
	v.sendText.Disable()
	v.text.OnChanged = func(s string) {
		if s == "" {
			v.sendText.Disable()
		} else {
			v.sendText.Enable()
		}
	}
	drop := container.NewVBox(
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(64), icon)),
		hint,
		container.NewCenter(container.NewHBox(v.addFiles, v.addFolder)),
		v.text,
		container.NewHBox(layout.NewSpacer(), v.sendText),
	)
	v.pending = newPendingList(v.sendPending)

	v.code = canvas.NewText("", theme.Color(theme.ColorNameForeground))
	v.code.TextSize = codeTextSize
	// Monospace only: Fyne's themes have no bold monospace face (the
	// default theme ignores Bold for monospace, the test theme has none).
	v.code.TextStyle = fyne.TextStyle{Monospace: true}
	v.code.Alignment = fyne.TextAlignCenter
	v.copy = widget.NewButtonWithIcon(lang.X("button.copy", "Copy"), theme.ContentCopyIcon(), v.copyCode)
	v.copy.Disable()
	v.copyLink = widget.NewButtonWithIcon(lang.X("send.copyLink", "Copy link"), theme.ContentCopyIcon(), v.copyShareLink)
	v.copyLink.Disable()
	v.link = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	v.link.Wrapping = fyne.TextWrapBreak
	v.link.Selectable = true
	v.link.Hide()
	v.qr = canvas.NewImageFromImage(nil)
	v.qr.FillMode = canvas.ImageFillContain
	v.qr.ScaleMode = canvas.ImageScalePixels // crisp modules
	v.qr.SetMinSize(fyne.NewSquareSize(qrSize))
	v.qr.Hide()
	v.state = widget.NewLabelWithStyle("", fyne.TextAlignCenter, fyne.TextStyle{})
	v.state.Wrapping = fyne.TextWrapWord
	v.items = container.NewVBox()
	v.cancel = widget.NewButtonWithIcon(lang.X("button.cancel", "Cancel"), theme.CancelIcon(), func() {
		if v.job != nil {
			w.cancelJob(v.job)
		}
	})
	v.cancel.Importance = widget.DangerImportance
	v.another = widget.NewButtonWithIcon(lang.X("button.close", "Close"), theme.ConfirmIcon(), v.clear)
	v.another.Hide()

	caption := widget.NewLabelWithStyle(lang.X("send.codeCaption", "Share code — type it on the other computer"), fyne.TextAlignCenter, fyne.TextStyle{})
	v.card = container.NewVBox(
		widget.NewSeparator(),
		caption,
		v.code,
		container.NewCenter(container.NewHBox(v.copy, v.copyLink)),
		// The state, then the QR code, stay in sight in the default
		// window size; the link text (also behind Copy link) may need a
		// scroll.
		v.state,
		container.NewCenter(v.qr),
		v.link,
		widget.NewLabelWithStyle(lang.X("send.listTitle", "Sending"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		v.items,
		container.NewCenter(container.NewHBox(v.cancel, v.another)),
	)
	v.card.Hide()
	// The scroll bar is drawn over the content's right edge: keep the
	// right-aligned buttons clear of it.
	v.root = container.NewVScroll(container.New(layout.NewCustomPaddedLayout(0, 0, 0, theme.ScrollBarSize()),
		container.NewVBox(drop, v.pending.card, v.card)))
	w.app.Settings().AddListener(func(fyne.Settings) { // follow theme changes
		v.code.Color = theme.Color(theme.ColorNameForeground)
		v.code.Refresh()
	})
	return v
}

// show makes j the send on show.
func (v *sendView) show(j *job) {
	v.job = j
	v.code.Text = "…"
	v.code.Refresh()
	v.copy.SetText(lang.X("button.copy", "Copy"))
	v.copy.Disable()
	v.setLink("")
	v.state.SetText(stateWords("", dirSend))
	objs := make([]fyne.CanvasObject, 0, min(len(j.paths), maxListedItems)+1)
	if s := j.snap(time.Now()); s.isText {
		objs = append(objs, container.NewBorder(nil, nil, widget.NewIcon(theme.DocumentIcon()), nil,
			widget.NewLabel(capitalize(s.what()))))
	}
	for i, p := range j.paths {
		if i == maxListedItems {
			objs = append(objs, widget.NewLabel(andMore(len(j.paths)-i)))
			break
		}
		objs = append(objs, itemLabel(p))
	}
	v.items.Objects = objs
	v.items.Refresh()
	v.cancel.Show()
	v.another.Hide()
	v.card.Show()
}

// maxListedItems bounds the list of what is sent.
const maxListedItems = 50

// itemLabel describes one path to send: "report.pdf — 1.2 MB" or
// "photos (folder)", with an icon.
func itemLabel(p string) fyne.CanvasObject {
	name := filepath.Base(p)
	text := name
	icon := theme.FileIcon()
	if st, err := os.Stat(p); err == nil {
		if st.IsDir() {
			text = lang.X("item.folder", "{{.Name}} (folder)", vars{"Name": name})
			icon = theme.FolderIcon()
		} else {
			text = lang.X("item.file", "{{.Name}} — {{.Size}}", vars{"Name": name, "Size": humanBytes(st.Size())})
		}
	}
	l := widget.NewLabel(text)
	l.Truncation = fyne.TextTruncateEllipsis
	return container.NewBorder(nil, nil, widget.NewIcon(icon), nil, l)
}

// update draws the send on show; on the Fyne goroutine.
func (v *sendView) update(j *job, s snapshot) {
	if j != v.job {
		return
	}
	code := s.code
	if code == "" {
		code = "…"
	}
	if v.code.Text != code {
		v.code.Text = code
		v.code.Refresh()
	}
	if s.code != "" && !s.finished { // a finished send's code is no use
		v.copy.Enable()
		v.setLink(shareLink(s.code, j.rendezvous))
	} else {
		v.copy.Disable()
		v.setLink("")
	}
	setText(v.state, s.stateText(dirSend))
	if s.finished {
		v.cancel.Hide()
		v.another.Show()
	}
}

// copyCode puts the share code on the clipboard.
func (v *sendView) copyCode() {
	if v.job == nil {
		return
	}
	v.job.mu.Lock()
	code := v.job.s.code
	v.job.mu.Unlock()
	if code == "" {
		return
	}
	v.w.app.Clipboard().SetContent(code)
	v.copy.SetText(lang.X("button.copied", "Copied"))
}

// shareLink is the share link for a code the engine reported, or "" if
// the code or the server cannot go in one (the engine's code is checked
// like any other input before it is drawn).
func shareLink(c, rendezvous string) string {
	sc, err := code.Parse(c)
	if err != nil {
		return ""
	}
	l, err := code.NewLink(sc, rendezvous)
	if err != nil {
		return ""
	}
	return l.String()
}

// setLink shows link, its QR code and Copy link, or hides them for "".
// The QR code is drawn only when the link changes.
func (v *sendView) setLink(link string) {
	if link == v.shown {
		return
	}
	v.shown = link
	var img image.Image
	if link != "" {
		if q, err := qr.Encode(link); err == nil {
			img = q.Image(qrScale)
		}
	}
	if link == "" {
		v.link.Hide()
		v.copyLink.Disable()
	} else {
		v.link.SetText(link)
		v.link.Show()
		v.copyLink.SetText(lang.X("send.copyLink", "Copy link"))
		v.copyLink.Enable()
	}
	v.qr.Image = img
	if img == nil {
		v.qr.Hide()
	} else {
		v.qr.Show()
	}
	v.qr.Refresh()
	v.card.Refresh()
}

// copyShareLink puts the share link on the clipboard.
func (v *sendView) copyShareLink() {
	if v.shown == "" {
		return
	}
	v.w.app.Clipboard().SetContent(v.shown)
	v.copyLink.SetText(lang.X("button.copied", "Copied"))
}

// clear hides a finished send.
func (v *sendView) clear() {
	v.job = nil
	v.card.Hide()
}

// pickFile lets the user add a file to the next send.
func (w *MainWindow) pickFile() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			w.showError(err)
			return
		}
		if r == nil {
			return
		}
		u := r.URI()
		r.Close()
		w.Drop([]fyne.URI{u})
	}, w.win)
	d.SetConfirmText(lang.X("send.pickConfirm", "Add"))
	d.Show()
}

// pickFolder lets the user add a folder to the next send.
func (w *MainWindow) pickFolder() {
	d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		if err != nil {
			w.showError(err)
			return
		}
		if u == nil {
			return
		}
		w.Drop([]fyne.URI{u})
	}, w.win)
	d.SetConfirmText(lang.X("send.pickConfirm", "Add"))
	d.Show()
}
