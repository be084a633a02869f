package ui

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"ferry/transfer"
)

// TestScreenshots draws the Send tab with a code shown and the Transfers
// tab, in each bundled language, light and dark, into the folder named by
// FERRY_SCREENSHOTS (docs/screenshots in the repository):
//
//	FERRY_SCREENSHOTS=$PWD/docs/screenshots go test ./ui -run TestScreenshots
//
// Fyne's software renderer draws them with the theme's fonts, falling back
// to the system's fonts for other scripts: Chinese needs a CJK font
// installed (Debian: fonts-noto-cjk), as on a Chinese desktop.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("FERRY_SCREENSHOTS")
	if dir == "" {
		t.Skip("set FERRY_SCREENSHOTS to a folder to draw the screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, loc := range []struct{ name, locale string }{
		{"en", "en_US.UTF-8"}, {"de", "de_DE.UTF-8"}, {"zh-Hans", "zh_CN.UTF-8"},
	} {
		for _, th := range []string{ThemeLight, ThemeDark} {
			t.Run(loc.name+"-"+th, func(t *testing.T) {
				inLocale(t, loc.locale)
				h := newHarnessWith(t, map[string]string{prefTheme: th, prefRendezvous: "ferry.example.org:7887"})
				h.screenshotScene()
				h.w.win.Resize(fyne.NewSize(640, 860)) // the whole Send tab, list included
				shot := func(name string) {
					h.q.drain()
					f, err := os.Create(filepath.Join(dir, name+"-"+loc.name+"-"+th+".png"))
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					if err := png.Encode(f, h.w.win.Canvas().Capture()); err != nil {
						t.Fatal(err)
					}
				}
				h.w.tabs.Select(h.w.sendTab)
				shot("send")
				h.w.tabs.Select(h.w.xferTab)
				shot("transfers")
			})
		}
	}
}

// screenshotScene makes a send with its code shown, a receive half done
// and a finished send.
func (h *harness) screenshotScene() {
	h.t.Helper()
	dir := h.t.TempDir()
	mk := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		if size < 0 {
			if err := os.Mkdir(p, 0o755); err != nil {
				h.t.Fatal(err)
			}
			return p
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			h.t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			h.t.Fatal(err)
		}
		return p
	}
	// A finished send first, so it sits lowest in Transfers.
	h.w.StartSend([]string{mk("slides.odp", 4_200_000)})
	done := h.eng.next(h.t)
	done.emit(
		transfer.Event{Kind: transfer.EventOffer, Names: []string{"slides.odp"}, Files: 1, Bytes: 4_200_000},
		transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathLAN},
		transfer.Event{Kind: transfer.EventDone, Files: 1, Bytes: 4_200_000, Elapsed: 1300 * time.Millisecond},
	)
	done.ret <- nil
	h.until("the first send's end", func() bool { return h.w.jobs[0].finalized })

	h.w.StartReceive("42-orbit-velvet")
	recv := h.eng.next(h.t)
	recv.emit(
		transfer.Event{Kind: transfer.EventOffer, Names: []string{"holiday-video.mp4"}, Files: 1, Bytes: 1_800_000_000},
		transfer.Event{Kind: transfer.EventConnected, Path: transfer.PathDirectUDP},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateReceiving},
		transfer.Event{Kind: transfer.EventProgress, Bytes: 730_000_000, Total: 1_800_000_000, Rate: 48_500_000, ETA: 22 * time.Second},
	)

	h.w.Drop(fileURIs(mk("report.pdf", 1_240_000), mk("photos", -1), mk("notes.txt", 2_300)))
	test.Tap(h.w.send.pending.send)
	send := h.eng.next(h.t)
	send.emit(
		transfer.Event{Kind: transfer.EventCode, Code: testCode},
		transfer.Event{Kind: transfer.EventState, State: transfer.StateWaiting},
	)
	h.until("the code", func() bool { return h.w.send.code.Text == testCode })
	h.until("the receive's progress", func() bool { return h.w.jobs[1].row.eta.Text != "" })
}
