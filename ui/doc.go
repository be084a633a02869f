// Package ui is ferry's Fyne desktop app: windows, dialogs and widgets over
// the transfer engine's progress API. It must not import fyne.io/fyne/v2/app
// (only main.go does), so its tests run headless without cgo, and it never
// implements transfer logic itself.
//
// main.go makes the app (app.NewWithID, so preferences and storage work)
// and calls [Run] with [NewEngine]. The window reaches the engine only
// through the small [Engine] interface, which tests replace with a fake.
//
// Layout: window.go holds [MainWindow] (tabs, drop target, close
// intercept, tray, notifications, the refresh ticker); pending.go gathers
// picks and drops into one send (see [MainWindow.AddPaths]); send.go, receive.go,
// history.go and settings.go are the tabs; rows.go draws one transfer;
// job.go is a transfer's state; engine.go adapts transfer.SendFiles and
// transfer.ReceiveFiles; format.go has the words people see.
//
// Share links: the Send tab shows the send's link (ferry://receive/CODE,
// see discovery/code) with Copy link and its QR code (drawn by ui/qr).
// A link opened on the desktop reaches the window through [RunLink] and
// [MainWindow.OpenLink], which fill the Receive tab and never start a
// receive on their own; the link's server is used for that receive only.
//
// Threading: the engine reports from its own goroutines. Its events only
// update a job (atomics for progress, a mutex for the rest) and mark it
// dirty; one ticker posts at most one redraw every 100 ms through fyne.Do,
// so widgets are touched on Fyne's goroutine only and never once per event.
// The offer dialog is the one other crossing: Accept posts the dialog and
// blocks the engine until the user answers or the transfer ends.
package ui
