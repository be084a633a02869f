package ui

import (
	"image/color"
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"ferry/discovery/code"
)

// Theme choices stored in Settings.Theme.
const (
	ThemeSystem = "system"
	ThemeLight  = "light"
	ThemeDark   = "dark"
)

// Preference keys.
const (
	prefRendezvous  = "rendezvous"
	prefDownloadDir = "download_dir"
	prefAllowRelay  = "allow_relay"
	prefFollowLinks = "follow_links"
	prefTheme       = "theme"
)

// Settings are the user's choices, kept in App.Preferences().
type Settings struct {
	// Rendezvous is the rendezvous server, HOST:PORT; empty pairs on the
	// local network only.
	Rendezvous string
	// DownloadDir is where received files are saved.
	DownloadDir string
	// AllowRelay lets transfers go through a relay when no direct path
	// exists. Stored now, used by a later release.
	AllowRelay bool
	// Theme is ThemeSystem, ThemeLight or ThemeDark.
	Theme string
	// FollowLinks sends what symbolic links inside a dropped folder point
	// to; by default links are left out (and counted when the send ends).
	FollowLinks bool
}

// LoadSettings reads the settings from p, with defaults for what is unset.
func LoadSettings(p fyne.Preferences) Settings {
	s := Settings{
		Rendezvous:  strings.TrimSpace(p.String(prefRendezvous)),
		DownloadDir: p.StringWithFallback(prefDownloadDir, DefaultDownloadDir()),
		AllowRelay:  p.BoolWithFallback(prefAllowRelay, true),
		Theme:       p.StringWithFallback(prefTheme, ThemeSystem),
		FollowLinks: p.Bool(prefFollowLinks),
	}
	if s.DownloadDir == "" {
		s.DownloadDir = DefaultDownloadDir()
	}
	switch s.Theme {
	case ThemeSystem, ThemeLight, ThemeDark:
	default:
		s.Theme = ThemeSystem
	}
	return s
}

// SaveSettings stores s in p.
func SaveSettings(p fyne.Preferences, s Settings) {
	p.SetString(prefRendezvous, strings.TrimSpace(s.Rendezvous))
	p.SetString(prefDownloadDir, s.DownloadDir)
	p.SetBool(prefAllowRelay, s.AllowRelay)
	p.SetString(prefTheme, s.Theme)
	p.SetBool(prefFollowLinks, s.FollowLinks)
}

// DefaultDownloadDir is ~/Downloads, or the home folder if there is none.
func DefaultDownloadDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		if wd, err := os.Getwd(); err == nil {
			return wd
		}
		return "."
	}
	dl := filepath.Join(home, "Downloads")
	if st, err := os.Stat(dl); err == nil && st.IsDir() {
		return dl
	}
	return home
}

// ValidateRendezvous accepts "" (local network only) or HOST:PORT, with
// surrounding whitespace; the rules are code.ValidateRendezvous's, so any
// server saved in Settings fits in a share link.
func ValidateRendezvous(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return code.ValidateRendezvous(s)
}

// applyTheme sets the app's theme for a Settings.Theme value.
func applyTheme(a fyne.App, name string) {
	switch name {
	case ThemeLight:
		a.Settings().SetTheme(variantTheme{Theme: theme.DefaultTheme(), variant: theme.VariantLight})
	case ThemeDark:
		a.Settings().SetTheme(variantTheme{Theme: theme.DefaultTheme(), variant: theme.VariantDark})
	default:
		a.Settings().SetTheme(theme.DefaultTheme())
	}
}

// variantTheme is the default theme pinned to one variant, whatever the
// system prefers.
type variantTheme struct {
	fyne.Theme
	variant fyne.ThemeVariant
}

func (t variantTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, t.variant)
}

// settingsView is the Settings tab.
type settingsView struct {
	w *MainWindow

	root       fyne.CanvasObject
	rendezvous *widget.Entry
	rvError    *widget.Label
	folder     *widget.Label
	change     *widget.Button
	relay      *widget.Check
	links      *widget.Check
	theme      *widget.RadioGroup
	netcheck   *netcheckView
}

// themeNames are the theme choices in the order the radio group shows
// them.
func themeNames() []string { return []string{ThemeSystem, ThemeLight, ThemeDark} }

// themeLabel is a theme choice in words.
func themeLabel(name string) string {
	switch name {
	case ThemeLight:
		return lang.X("theme.light", "Light")
	case ThemeDark:
		return lang.X("theme.dark", "Dark")
	}
	return lang.X("theme.system", "System")
}

// themeName is the choice a label names.
func themeName(label string) string {
	for _, n := range themeNames() {
		if themeLabel(n) == label {
			return n
		}
	}
	return ThemeSystem
}

func newSettingsView(w *MainWindow) *settingsView {
	v := &settingsView{w: w}
	s := w.settings

	v.rendezvous = widget.NewEntry()
	v.rendezvous.SetPlaceHolder(lang.X("settings.rendezvousPlaceholder", "HOST:PORT (empty: local network only)"))
	v.rendezvous.SetText(s.Rendezvous)
	v.rvError = widget.NewLabel("")
	v.rvError.Importance = widget.DangerImportance
	v.rvError.Wrapping = fyne.TextWrapWord
	v.rvError.Hide()
	v.rendezvous.OnChanged = v.rendezvousChanged

	v.folder = widget.NewLabel(s.DownloadDir)
	v.folder.Truncation = fyne.TextTruncateEllipsis
	v.change = widget.NewButtonWithIcon(lang.X("button.change", "Change…"), theme.FolderOpenIcon(), func() {
		w.chooseFolder(w.settings.DownloadDir, w.setDownloadDir)
	})

	v.relay = widget.NewCheck(lang.X("settings.allowRelay", "Allow relayed transfers when no direct path exists"), func(on bool) {
		w.settings.AllowRelay = on
		w.saveSettings()
	})
	v.relay.SetChecked(s.AllowRelay)

	v.links = widget.NewCheck(lang.X("settings.followLinks", "Send what symbolic links in a folder point to"), func(on bool) {
		w.settings.FollowLinks = on
		w.saveSettings()
	})
	v.links.SetChecked(s.FollowLinks)

	var labels []string
	for _, n := range themeNames() {
		labels = append(labels, themeLabel(n))
	}
	v.theme = widget.NewRadioGroup(labels, func(label string) {
		w.settings.Theme = themeName(label)
		w.saveSettings()
		applyTheme(w.app, w.settings.Theme)
	})
	v.theme.Horizontal = true
	v.theme.Required = true
	v.theme.Selected = themeLabel(s.Theme)

	v.netcheck = newNetcheckView(w)

	form := widget.NewForm(
		widget.NewFormItem(lang.X("settings.rendezvous", "Rendezvous server"), container.NewVBox(v.rendezvous, v.rvError)),
		widget.NewFormItem(lang.X("settings.downloadFolder", "Download folder"), container.NewBorder(nil, nil, nil, v.change, v.folder)),
		widget.NewFormItem(lang.X("settings.relay", "Relay"), v.relay),
		widget.NewFormItem(lang.X("settings.links", "Links"), v.links),
		widget.NewFormItem(lang.X("settings.theme", "Theme"), v.theme),
		widget.NewFormItem(lang.X("settings.network", "Network"), container.NewVBox(container.NewHBox(v.netcheck.button), v.netcheck.result)),
	)
	help := widget.NewLabel(lang.X("settings.help", "Without a rendezvous server, both computers must be on the same local network. "+
		"Changes apply to the next transfer."))
	help.Wrapping = fyne.TextWrapWord
	help.Importance = widget.LowImportance
	v.root = container.NewVScroll(container.NewVBox(form, help))
	return v
}

// rendezvousChanged validates as the user types and saves valid values.
func (v *settingsView) rendezvousChanged(s string) {
	if err := ValidateRendezvous(s); err != nil {
		v.rvError.SetText(capitalize(err.Error()))
		v.rvError.Show()
		return
	}
	v.rvError.SetText("")
	v.rvError.Hide()
	v.w.settings.Rendezvous = strings.TrimSpace(s)
	v.w.saveSettings()
}

// setDownloadDir changes and saves the download folder; on the Fyne
// goroutine.
func (w *MainWindow) setDownloadDir(dir string) {
	if dir == "" {
		return
	}
	w.settings.DownloadDir = dir
	w.saveSettings()
	w.settingsTab.folder.SetText(dir)
	w.recv.folder.SetText(dir)
}

func (w *MainWindow) saveSettings() {
	SaveSettings(w.app.Preferences(), w.settings)
}

// chooseFolder opens a folder picker starting at start and calls done with
// the chosen path.
func (w *MainWindow) chooseFolder(start string, done func(string)) {
	d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		if err != nil {
			w.showError(err)
			return
		}
		if u == nil {
			return
		}
		done(u.Path())
	}, w.win)
	if loc := listableDir(start); loc != nil {
		d.SetLocation(loc)
	}
	d.Show()
}
