package ui

import (
	"context"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"ferry/transfer"
)

// acceptTextFunc is ReceiveRequest.AcceptText for j: the offer dialog for
// a text, as acceptFunc for files. Called from the engine's goroutine.
func (w *MainWindow) acceptTextFunc(j *job) func(ctx context.Context, n int64) (bool, error) {
	return func(ctx context.Context, n int64) (bool, error) {
		return w.ask(ctx, j, func(answer chan<- bool) { w.showTextOffer(j, n, answer) })
	}
}

// showTextOffer opens the accept/decline dialog for a text of n bytes; on
// the Fyne goroutine.
func (w *MainWindow) showTextOffer(j *job, n int64, answer chan<- bool) {
	p := &offerPrompt{job: j, answer: answer}
	p.summary = widget.NewLabelWithStyle(lang.X("textOffer.summary", "The sender offers {{.What}}.", vars{"What": textWhat(n)}), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	p.summary.Wrapping = fyne.TextWrapWord
	note := widget.NewLabel(lang.X("textOffer.note", "It is shown here, with Copy, and not saved."))
	note.Wrapping = fyne.TextWrapWord
	w.openOffer(p, lang.X("textOffer.title", "Incoming text"), container.NewVBox(p.summary, note),
		lang.X("textOffer.notice", "{{.What}} offered", vars{"What": capitalize(textWhat(n))}))
}

// maxShownText bounds the text the dialog shows: a label lays out all of
// its text, and a megabyte of it would stall the window. Copy copies the
// whole text.
const maxShownText = 64 << 10

// textSize is the text dialog's scrolling area.
var textSize = fyne.NewSize(460, 260)

// textDialog shows a received text, selectable and scrollable, with Copy.
type textDialog struct {
	dialog *dialog.CustomDialog
	text   string        // the whole text, for Copy
	shown  *widget.Label // what is shown: the text, or its start
	note   *widget.Label // says when only the start is shown
	copy   *widget.Button
}

// showText shows a received text; on the Fyne goroutine. The window keeps
// no copy once the dialog is closed.
func (w *MainWindow) showText(text string) {
	d := &textDialog{text: text}
	shown := text
	if len(shown) > maxShownText {
		cut := maxShownText
		for cut > 0 && !utf8.RuneStart(shown[cut]) {
			cut--
		}
		shown = shown[:cut]
	}
	d.shown = widget.NewLabel(shown)
	d.shown.Wrapping = fyne.TextWrapWord
	d.shown.Selectable = true
	d.note = widget.NewLabel("")
	d.note.Importance = widget.LowImportance
	d.note.Wrapping = fyne.TextWrapWord
	if len(shown) < len(text) {
		d.note.SetText(lang.X("text.cut", "Showing the first {{.Shown}} of {{.Size}}; Copy copies all of it.",
			vars{"Shown": humanBytes(int64(len(shown))), "Size": humanBytes(int64(len(text)))}))
	} else {
		d.note.Hide()
	}
	scroll := container.NewScroll(d.shown)
	scroll.SetMinSize(textSize)
	d.copy = widget.NewButtonWithIcon(lang.X("button.copy", "Copy"), theme.ContentCopyIcon(), func() {
		w.app.Clipboard().SetContent(d.text)
		d.copy.SetText(lang.X("button.copied", "Copied"))
	})
	d.copy.Importance = widget.HighImportance
	d.dialog = dialog.NewCustomWithoutButtons(lang.X("text.title", "Text received"), container.NewBorder(nil, d.note, nil, nil, scroll), w.win)
	closeButton := widget.NewButtonWithIcon(lang.X("button.close", "Close"), theme.CancelIcon(), func() { d.dialog.Hide() })
	d.dialog.SetButtons([]fyne.CanvasObject{closeButton, d.copy})
	d.dialog.SetOnClosed(func() {
		if w.textShown == d {
			w.textShown = nil
		}
	})
	w.textShown = d
	d.dialog.Show()
	w.win.RequestFocus()
}

// submitText sends what the Send tab's text box holds, or says why it
// cannot.
func (v *sendView) submitText() {
	text := v.text.Text
	if err := transfer.CheckText(text); err != nil {
		v.w.showError(err)
		return
	}
	v.text.SetText("")
	v.w.StartSendText(text)
}
