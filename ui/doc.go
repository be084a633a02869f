// Package ui is ferry's Fyne desktop app: windows, dialogs and widgets over
// the transfer engine's progress API. It must not import fyne.io/fyne/v2/app
// (only main.go does), so its tests run headless without cgo, and it never
// implements transfer logic itself.
package ui
