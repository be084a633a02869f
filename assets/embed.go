// Package assets holds ferry's embedded artwork: the application icon used
// by the desktop window, the system tray and notifications.
package assets

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

//go:embed icon.png
var iconPNG []byte

// Icon is ferry's application icon (512×512 PNG).
var Icon fyne.Resource = fyne.NewStaticResource("icon.png", iconPNG)
