package ui

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"ferry/discovery"
)

// checkingEngine is a fake engine that can check the network: each check
// waits for the test to answer it.
type checkingEngine struct {
	*fakeEngine
	asked chan chan *discovery.NetReport
}

func (e *checkingEngine) CheckNetwork(ctx context.Context) (*discovery.NetReport, error) {
	answer := make(chan *discovery.NetReport)
	e.asked <- answer
	select {
	case r := <-answer:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestCheckMyNetwork(t *testing.T) {
	h := newHarness(t)
	eng := &checkingEngine{fakeEngine: h.eng, asked: make(chan chan *discovery.NetReport, 1)}
	w := h.open(func(Settings) Engine { return eng })
	v := w.settingsTab.netcheck

	test.Tap(v.button)
	if !v.button.Disabled() || v.button.Text != "Checking…" {
		t.Fatalf("button %q, disabled %v while checking", v.button.Text, v.button.Disabled())
	}
	answer := <-eng.asked
	answer <- &discovery.NetReport{
		Rendezvous: "rv.example:7887", UDP: true,
		Reflexive: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:40000")},
		Mapping:   discovery.MappingIndependent, Filtering: discovery.FilteringAddressAndPort,
		PortMap: discovery.PortMapNone, Verdict: "Direct connections are likely with most peers.",
	}
	h.q.until(t, "the result", func() bool { return v.result.Visible() })
	if v.button.Disabled() || v.button.Text != "Check my network" {
		t.Errorf("button %q, disabled %v after the check", v.button.Text, v.button.Disabled())
	}
	for _, want := range []string{"198.51.100.7:40000", "endpoint-independent", "Direct connections are likely with most peers."} {
		if !strings.Contains(v.result.Text, want) {
			t.Errorf("result lacks %q:\n%s", want, v.result.Text)
		}
	}
}

// An engine that cannot check says so instead of doing nothing.
func TestCheckMyNetworkUnsupported(t *testing.T) {
	h := newHarness(t)
	v := h.w.settingsTab.netcheck
	test.Tap(v.button)
	if !v.result.Visible() || !strings.Contains(v.result.Text, "cannot check") {
		t.Fatalf("result %q, visible %v", v.result.Text, v.result.Visible())
	}
}

// Closing the window while a check runs cancels it.
func TestCheckMyNetworkCanceledOnClose(t *testing.T) {
	h := newHarness(t)
	eng := &checkingEngine{fakeEngine: h.eng, asked: make(chan chan *discovery.NetReport, 1)}
	w := h.open(func(Settings) Engine { return eng })
	test.Tap(w.settingsTab.netcheck.button)
	<-eng.asked
	w.cancelAll()
	w.wg.Wait() // returns only because the check saw its context end
}
