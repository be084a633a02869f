package ui

import (
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"ferry/transfer"
)

// inLocale runs the test in the system locale loc, and in English again
// afterwards.
func inLocale(t *testing.T, loc string) {
	t.Helper()
	useLocale(loc)
	t.Cleanup(func() { useLocale("en_US.UTF-8") })
}

// tabTexts lists the window's tab names.
func (h *harness) tabTexts() []string {
	var out []string
	for _, it := range h.w.tabs.Items {
		out = append(out, it.Text)
	}
	return out
}

// TestWindowFollowsLocale: with a German or Chinese system locale the
// window speaks that language: tab names, buttons, states, plurals,
// numbers and durations.
func TestWindowFollowsLocale(t *testing.T) {
	for _, tc := range []struct {
		locale   string
		tabs     []string
		addFiles string
		waiting  string
		pending1 string // the pending list's title with one item
		pending2 string // and with two
		history  string // a history detail after the date
		eta      string
	}{
		{
			locale:   "de_DE.UTF-8",
			tabs:     []string{"Senden", "Empfangen", "Übertragungen", "Verlauf", "Einstellungen"},
			addFiles: "Dateien hinzufügen…",
			waiting:  "Wartet auf Empfänger",
			pending1: "Bereit zum Senden: 1 Eintrag",
			pending2: "Bereit zum Senden: 2 Einträge",
			history:  "1 Datei, 1,5 kB in 4,2 s · Direkt",
			eta:      "noch 3 min 20 s",
		},
		{
			locale:   "zh_CN.UTF-8",
			tabs:     []string{"发送", "接收", "传输", "历史", "设置"},
			addFiles: "添加文件…",
			waiting:  "等待接收方",
			pending1: "准备发送：1 项",
			pending2: "准备发送：2 项",
			history:  "1 个文件，1.5 kB 用时 4.2 秒 · 直连",
			eta:      "剩余 3 分 20 秒",
		},
	} {
		t.Run(tc.locale, func(t *testing.T) {
			inLocale(t, tc.locale)
			h := newHarness(t)
			if got := h.tabTexts(); !slices.Equal(got, tc.tabs) {
				t.Errorf("tabs %q, want %q", got, tc.tabs)
			}
			if got := h.w.send.addFiles.Text; got != tc.addFiles {
				t.Errorf("Add files says %q, want %q", got, tc.addFiles)
			}
			p := makeFiles(t, "a.txt", "b.txt")
			h.w.Drop(fileURIs(p[0]))
			if got := h.w.send.pending.title.Text; got != tc.pending1 {
				t.Errorf("pending title %q, want %q", got, tc.pending1)
			}
			h.w.Drop(fileURIs(p[1]))
			if got := h.w.send.pending.title.Text; got != tc.pending2 {
				t.Errorf("pending title %q, want %q", got, tc.pending2)
			}
			test.Tap(h.w.send.pending.send)
			c := h.eng.next(t)
			c.emit(transfer.Event{Kind: transfer.EventState, State: transfer.StateWaiting})
			h.waitState(tc.waiting)

			e := HistoryEntry{Time: time.Now(), Direction: "send", Files: 1, Bytes: 1500,
				Result: ResultDone, Elapsed: 4200 * time.Millisecond, PathLabel: string(transfer.PathDirectUDP)}
			if got := entryDetail(e); !strings.HasSuffix(got, tc.history) {
				t.Errorf("history detail %q, want it to end in %q", got, tc.history)
			}
			if got := humanETA(200 * time.Second); got != tc.eta {
				t.Errorf("ETA %q, want %q", got, tc.eta)
			}
		})
	}
}
