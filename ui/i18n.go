package ui

import (
	"embed"
	"fmt"

	"fyne.io/fyne/v2/lang"
)

// translations are the app's bundled languages, one go-i18n JSON file
// each, named by BCP 47 tag (see translations/README.md). Every string the
// window shows goes through fyne.io/fyne/v2/lang with a key from these
// files and its English text as the fallback: lang.X for one form,
// lang.XN for a count. TestTranslationsComplete keeps the code and the
// files in step.
//
//go:embed translations/*.json
var translations embed.FS

// RegisterTranslations adds the app's languages to Fyne's; Fyne then picks
// the one closest to the system locale (LANGUAGE, LC_ALL, LC_MESSAGES or
// LANG on Linux). Call it once at startup, before building a window: Run
// and RunLink do. The command line stays English: only the window
// translates.
func RegisterTranslations() error {
	if err := lang.AddTranslationsFS(translations, "translations"); err != nil {
		return fmt.Errorf("load the app's translations: %w", err)
	}
	return nil
}

// vars is the data of a translated template: {{.Name}} in the text.
type vars = map[string]any
