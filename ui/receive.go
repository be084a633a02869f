package ui

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"ferry/discovery/code"
	"ferry/transfer"
)

// receiveView is the Receive tab: the code entry with completions and
// validation as you type, the download folder and the Receive button.
type receiveView struct {
	w    *MainWindow
	root fyne.CanvasObject
	box  *fyne.Container

	entry       *widget.Entry
	suggestions *fyne.Container // one low-importance button per completion
	message     *widget.Label   // why the code is not valid yet
	folder      *widget.Label
	change      *widget.Button
	receive     *widget.Button
	server      *widget.Label   // the server a link asked for
	serverRow   *fyne.Container // server and "Use my settings"; hidden without a link's server
	clearServer *widget.Button

	valid string // the canonical code when the entry holds a valid one

	// From a share link (opened or pasted): its code and server. The
	// server is used while the entry holds that code; editing the code
	// into another, or Clear, drops it.
	linkCode   string
	linkServer string
}

func newReceiveView(w *MainWindow) *receiveView {
	v := &receiveView{w: w}
	v.entry = widget.NewEntry()
	v.entry.SetPlaceHolder(lang.X("receive.placeholder", "Share code, e.g. 7-tiger-tomorrow"))
	v.entry.TextStyle = fyne.TextStyle{Monospace: true}
	v.entry.OnChanged = v.changed
	v.entry.OnSubmitted = func(string) { v.submit() }
	v.suggestions = container.NewGridWithColumns(2)
	v.message = widget.NewLabel("")
	v.message.Wrapping = fyne.TextWrapWord
	v.message.Hide()

	v.folder = widget.NewLabel(w.settings.DownloadDir)
	v.folder.Truncation = fyne.TextTruncateEllipsis
	v.change = widget.NewButtonWithIcon(lang.X("button.change", "Change…"), theme.FolderOpenIcon(), func() {
		w.chooseFolder(w.settings.DownloadDir, w.setDownloadDir)
	})
	v.receive = widget.NewButtonWithIcon(lang.X("receive.button", "Receive"), theme.DownloadIcon(), v.submit)
	v.receive.Importance = widget.HighImportance
	v.receive.Disable()
	v.server = widget.NewLabel("")
	v.server.Wrapping = fyne.TextWrapBreak
	v.clearServer = widget.NewButtonWithIcon(lang.X("receive.useMySettings", "Use my settings"), theme.ContentClearIcon(), func() {
		v.setLinkServer("", "")
		v.box.Refresh() // lay out again without the row
	})
	v.serverRow = container.NewBorder(nil, nil, nil, v.clearServer, v.server)
	v.serverRow.Hide()

	title := widget.NewLabelWithStyle(lang.X("receive.title", "Type the code shown on the sending computer"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	saveTo := container.NewBorder(nil, nil, widget.NewLabel(lang.X("receive.saveTo", "Save to:")), v.change, v.folder)
	v.box = container.NewVBox(
		title,
		v.entry,
		v.message,
		v.suggestions,
		v.serverRow,
		saveTo,
		container.NewHBox(v.receive),
	)
	v.root = container.NewVScroll(v.box)
	return v
}

// changed validates and completes the code as it is typed. A share link
// pasted into the entry counts as its code, and its server is used.
func (v *receiveView) changed(s string) {
	var comps []string
	isLink := code.LooksLikeLink(s)
	if !isLink {
		comps = code.Complete(s, maxCompletions)
	}
	v.setSuggestions(comps)
	shown, serverShown := v.message.Visible(), v.serverRow.Visible()
	defer func() {
		if v.message.Visible() != shown || v.serverRow.Visible() != serverShown {
			v.box.Refresh() // lay out again around the message
		}
	}()
	var c code.Code
	var err error
	if isLink {
		var l code.Link
		if l, err = code.ParseLink(s); err == nil {
			c = l.Code
			v.setLinkServer(l.Code.String(), l.Rendezvous)
		} else {
			v.setLinkServer("", "")
		}
	} else {
		c, err = code.Parse(s)
	}
	if err == nil && c.String() != v.linkCode {
		v.setLinkServer("", "") // another code: the link's server is not its server
	}
	switch {
	case strings.TrimSpace(s) == "":
		v.valid = ""
		v.message.SetText("")
		v.message.Hide()
	case err != nil:
		v.valid = ""
		v.message.SetText(codeProblem(err))
		// While a completion exists the user is still typing: say it
		// quietly.
		if len(comps) > 0 {
			v.message.Importance = widget.LowImportance
		} else {
			v.message.Importance = widget.DangerImportance
		}
		v.message.Refresh()
		v.message.Show()
	default:
		v.valid = c.String()
		v.message.SetText("")
		v.message.Hide()
	}
	if v.valid == "" {
		v.receive.Disable()
	} else {
		v.receive.Enable()
	}
}

// codeProblem says what is wrong with a code as typed, in the window's
// language; other errors (a share link's) keep their English words.
func codeProblem(err error) string {
	var pe *code.ParseError
	if !errors.As(err, &pe) {
		return capitalize(err.Error())
	}
	v := vars{"Input": pe.Input, "Suggestion": pe.Suggestion, "Pos": pe.Pos}
	switch pe.Kind {
	case code.ErrEmpty:
		return lang.X("code.empty", "The code is empty")
	case code.ErrNameplate:
		if pe.Input != "" && strings.IndexFunc(pe.Input, func(r rune) bool { return !unicode.IsLetter(r) }) < 0 {
			return lang.X("code.noNumber", "The code must start with its number, e.g. \"7-...\"; it starts with \"{{.Input}}\"", v)
		}
		return lang.X("code.badNumber", "\"{{.Input}}\" is not a valid code number: it is a number from 1 to 99999, without leading zeros", v)
	case code.ErrWordCount:
		if pe.Pos > 2 {
			return lang.X("code.extraWords", "The code has more than 2 words after the number: \"{{.Input}}\" is extra", v)
		}
		return lang.X("code.fewWords", "The code needs 2 words after the number: a code looks like \"7-aardvark-adroitness\"")
	case code.ErrUnknownWord:
		if pe.Suggestion != "" {
			return lang.X("code.unknownWordSuggest", "\"{{.Input}}\" is not a word in the list; did you mean \"{{.Suggestion}}\"?", v)
		}
		return lang.X("code.unknownWord", "\"{{.Input}}\" is not a word in the list", v)
	case code.ErrWrongPosition:
		return lang.X("code.wrongPosition",
			"Word {{.Pos}} \"{{.Input}}\" belongs in the other position: were the words swapped, or was one left out or repeated?", v)
	}
	return capitalize(err.Error())
}

// setSuggestions shows completions as buttons that fill the entry.
func (v *receiveView) setSuggestions(comps []string) {
	objs := make([]fyne.CanvasObject, 0, len(comps))
	for _, c := range comps {
		text := c
		if strings.Count(c, "-") == 1 {
			text += "-" // a first word: go on with the second
		}
		b := widget.NewButton(c, func() {
			v.entry.SetText(text)
			v.entry.CursorColumn = len([]rune(text))
			v.entry.Refresh()
			v.w.win.Canvas().Focus(v.entry)
		})
		b.Importance = widget.LowImportance
		b.Alignment = widget.ButtonAlignLeading
		objs = append(objs, b)
	}
	v.suggestions.Objects = objs
	v.suggestions.Refresh()
}

// suggestionTexts lists the completions on show.
func (v *receiveView) suggestionTexts() []string {
	var out []string
	for _, o := range v.suggestions.Objects {
		out = append(out, o.(*widget.Button).Text)
	}
	return out
}

// submit starts receiving with a valid code, through the link's server
// if the code came with one.
func (v *receiveView) submit() {
	if v.valid == "" {
		return
	}
	c, server := v.valid, v.linkServer
	v.entry.SetText("")
	v.setLinkServer("", "")
	v.w.startReceive(c, server)
}

// setLinkServer remembers the server a link gave for linkCode and says
// which server the receive will use; "" for the server goes back to the
// one in Settings.
func (v *receiveView) setLinkServer(linkCode, server string) {
	if server == "" {
		linkCode = ""
	}
	v.linkCode, v.linkServer = linkCode, server
	if server == "" {
		v.serverRow.Hide()
		return
	}
	vs := vars{"Server": server}
	text := lang.X("receive.linkServer", "Server from the link: {{.Server}}", vs)
	if mine := strings.TrimSpace(v.w.settings.Rendezvous); mine == "" {
		text = lang.X("receive.linkServerLocal", "Server from the link: {{.Server}} (your settings use the local network only)", vs)
	} else if mine != server {
		vs["Mine"] = mine
		text = lang.X("receive.linkServerOther", "Server from the link: {{.Server}} (your settings use {{.Mine}})", vs)
	}
	v.server.SetText(text)
	v.serverRow.Show()
}

// OpenLink fills the Receive tab from a share link (as the desktop passes
// it when a ferry:// link is opened) and shows the tab: the code in the
// entry and the link's server for this receive. It never starts
// receiving: the user checks and presses Receive, and then accepts or
// declines the offer as always. An invalid link is explained on the tab
// and returned. On the Fyne goroutine.
func (w *MainWindow) OpenLink(raw string) error {
	w.tabs.Select(w.recvTab)
	v := w.recv
	l, err := code.ParseLink(raw)
	if err != nil {
		v.entry.SetText("")
		v.message.SetText(lang.X("receive.badLink", "This link cannot be used: {{.Reason}}", vars{"Reason": err.Error()}))
		v.message.Importance = widget.DangerImportance
		v.message.Show()
		v.box.Refresh()
		return err
	}
	v.setLinkServer(l.Code.String(), l.Rendezvous)
	v.entry.SetText(l.Code.String()) // validates again, and keeps the server
	w.win.Canvas().Focus(v.entry)
	w.win.RequestFocus()
	return nil
}

// offerPrompt is an open accept/decline dialog.
type offerPrompt struct {
	job     *job
	dialog  *dialog.ConfirmDialog
	summary *widget.Label
	names   *widget.Label  // nil for a text
	dest    *widget.Label  // nil for a text
	change  *widget.Button // nil unless the engine reads the folder late
	answer  chan<- bool
	// hidden because the transfer ended, not by the user
	dismissed bool
}

// acceptFunc is ReceiveRequest.Accept for j: it shows the offer dialog and
// waits for the user's answer or the end of ctx. Called from the engine's
// goroutine.
func (w *MainWindow) acceptFunc(j *job, late bool) func(ctx context.Context, m *transfer.Manifest) (bool, error) {
	return func(ctx context.Context, m *transfer.Manifest) (bool, error) {
		return w.ask(ctx, j, func(answer chan<- bool) { w.showOffer(j, m, answer, late) })
	}
}

// ask has show open j's offer dialog on the Fyne goroutine and waits for
// the answer it sends, or the end of ctx. From the engine's goroutine.
func (w *MainWindow) ask(ctx context.Context, j *job, show func(answer chan<- bool)) (bool, error) {
	answer := make(chan bool, 1)
	w.post(func() {
		if j.ctx.Err() != nil {
			answer <- false
			return
		}
		show(answer)
	})
	select {
	case ok := <-answer:
		return ok, nil
	case <-ctx.Done():
		w.post(func() { w.dismissOffer(j) })
		return false, ctx.Err()
	}
}

// openOffer shows p's Receive/Decline dialog around content, registered as
// j's open offer until answered, and tells the user with a notification.
func (w *MainWindow) openOffer(p *offerPrompt, title string, content fyne.CanvasObject, notice string) {
	j := p.job
	p.dialog = dialog.NewCustomConfirm(title, lang.X("offer.receive", "Receive"), lang.X("offer.decline", "Decline"), content, func(ok bool) {
		delete(w.offers, j)
		if !ok && !p.dismissed {
			j.declined.Store(true)
		}
		select {
		case p.answer <- ok:
		default:
		}
	}, w.win)
	w.offers[j] = p
	p.dialog.Resize(fyne.NewSize(460, 0).Max(p.dialog.MinSize()))
	p.dialog.Show()
	w.app.SendNotification(fyne.NewNotification(title, notice))
	w.win.RequestFocus()
}

// showOffer opens the accept/decline dialog for j; on the Fyne goroutine.
func (w *MainWindow) showOffer(j *job, m *transfer.Manifest, answer chan<- bool, late bool) {
	names := m.TopNames(0)
	files, size := m.FileCount(), m.TotalSize()
	j.setNames(names, files, size)
	j.dirty.Store(true)
	w.markDirty()

	p := &offerPrompt{job: j, answer: answer}
	v := vars{"Count": files, "Size": humanBytes(size), "Names": namesSummary(names)}
	p.summary = widget.NewLabelWithStyle(
		lang.XN("offer.summary", "The sender offers {{.Count}} files, {{.Size}} in total:", files, v),
		fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	listed := names
	more := 0
	if len(listed) > maxListedNames {
		listed, more = names[:maxListedNames], len(names)-maxListedNames
	}
	text := "• " + strings.Join(listed, "\n• ")
	if more > 0 {
		text += "\n… " + andMore(more)
	}
	p.names = widget.NewLabel(text)
	p.names.Wrapping = fyne.TextWrapBreak
	p.dest = widget.NewLabel(j.outDir())
	p.dest.Wrapping = fyne.TextWrapBreak
	saveTo := lang.X("receive.saveTo", "Save to:")
	destRow := container.NewBorder(nil, nil, widget.NewLabel(saveTo), nil, p.dest)
	if late {
		p.change = widget.NewButtonWithIcon(lang.X("button.change", "Change…"), theme.FolderOpenIcon(), func() {
			w.chooseFolder(j.outDir(), func(dir string) {
				j.setOutDir(dir)
				p.dest.SetText(dir)
			})
		})
		destRow = container.NewBorder(nil, nil, widget.NewLabel(saveTo), p.change, p.dest)
	}
	content := container.NewVBox(p.summary, p.names, widget.NewSeparator(), destRow)
	w.openOffer(p, lang.X("offer.title", "Incoming files"), content,
		lang.XN("offer.notice", "{{.Names}} offered ({{.Count}} files, {{.Size}})", files, v))
}

// dismissOffer closes j's dialog after the transfer ended without an
// answer.
func (w *MainWindow) dismissOffer(j *job) {
	if p, ok := w.offers[j]; ok {
		p.dismissed = true
		p.dialog.Hide()
	}
}
