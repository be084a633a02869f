package ui

import (
	"context"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/widget"

	"ferry/discovery"
	"ferry/ui/cli"
)

// NetworkChecker is an Engine that can check what the network allows
// (what `ferry netcheck` does); the Settings tab's "Check my network"
// button uses it. The engine NewEngine returns implements it.
type NetworkChecker interface {
	CheckNetwork(ctx context.Context) (*discovery.NetReport, error)
}

// netcheckTimeout bounds a check from the Settings tab; the check bounds
// itself to a few seconds.
const netcheckTimeout = 15 * time.Second

// CheckNetwork implements NetworkChecker.
func (e *realEngine) CheckNetwork(ctx context.Context) (*discovery.NetReport, error) {
	return discovery.Netcheck(ctx, discovery.NetcheckConfig{Rendezvous: e.cfg.Rendezvous, Logger: e.cfg.Logger, PortMap: discovery.PortMapCheck})
}

// netcheckView is the Settings tab's "Check my network" button and the
// result under it, in the words `ferry netcheck` prints.
type netcheckView struct {
	button *widget.Button
	result *widget.Label
	cancel context.CancelFunc // the running check's, or nil
}

func newNetcheckView(w *MainWindow) *netcheckView {
	v := &netcheckView{result: widget.NewLabel("")}
	v.result.TextStyle = fyne.TextStyle{Monospace: true}
	v.result.Wrapping = fyne.TextWrapWord
	v.result.Hide()
	v.button = widget.NewButton(lang.X("netcheck.button", "Check my network"), func() { w.checkNetwork() })
	return v
}

// checkNetwork runs a check with the current settings; on the Fyne
// goroutine.
func (w *MainWindow) checkNetwork() {
	v := w.settingsTab.netcheck
	checker, ok := w.newEngine(w.settings).(NetworkChecker)
	if !ok {
		v.result.SetText(lang.X("netcheck.unsupported", "This build cannot check the network."))
		v.result.Show()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), netcheckTimeout)
	v.cancel = cancel
	v.button.Disable()
	v.button.SetText(lang.X("netcheck.checking", "Checking…"))
	v.result.Hide()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cancel()
		r, err := checker.CheckNetwork(ctx)
		w.post(func() {
			v.cancel = nil
			v.button.Enable()
			v.button.SetText(lang.X("netcheck.button", "Check my network"))
			if err != nil {
				v.result.SetText(lang.X("netcheck.failed", "The check failed: {{.Reason}}", vars{"Reason": err.Error()}))
			} else {
				v.result.SetText(cli.NetcheckWords(r))
			}
			v.result.Show()
		})
	}()
}
