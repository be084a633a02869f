package transport

import (
	"context"
	"testing"
)

type drainResult struct{ inProgress, cut int }

// startDrain runs Drain(ctx) in the background and returns its result's
// channel.
func startDrain(h *relayHarness, ctx context.Context) <-chan drainResult {
	done := make(chan drainResult, 1)
	go func() {
		in, cut := h.srv.Drain(ctx)
		done <- drainResult{in, cut}
	}()
	return done
}

// TestRelayDrainLetsSessionsFinish: once Drain starts, new hellos are
// refused with RelayBusy and a session still waiting for its partner is
// ended, while a paired session goes on relaying until its client closes
// it; then Drain returns, having cut nothing.
func TestRelayDrainLetsSessionsFinish(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{})
	a, b := pairRelay(t, h)
	waiter := h.join(t, newRelayToken(t), RoleDialer)
	waiter.expectStatus(RelayWaiting)

	done := startDrain(h, context.Background())
	waiter.expectClosed() // the drain has started
	h.join(t, newRelayToken(t), RoleDialer).expectRefused(RelayBusy)
	// A takeover is a new hello too: refused, and the session stays.
	h.join(t, h.soleToken(t), RoleDialer).expectRefused(RelayBusy)
	expectRelayed(t, a, b)

	a.c.Close()
	b.expectClosed()
	if r := <-done; r != (drainResult{1, 0}) {
		t.Fatalf("Drain = %+v, want 1 in progress, 0 cut", r)
	}
	if st := h.srv.Stats(); st.Active != 0 || st.Refused[RelayBusy] != 2 {
		t.Fatalf("stats %+v, want no session and 2 busy refusals", st)
	}
}

// TestRelayDrainCutsAtDeadline: a paired session still relaying when the
// drain's context ends is closed then.
func TestRelayDrainCutsAtDeadline(t *testing.T) {
	h := newRelayHarness(t, RelayConfig{})
	a, b := pairRelay(t, h)
	waiter := h.join(t, newRelayToken(t), RoleDialer)
	waiter.expectStatus(RelayWaiting)
	ctx, cancel := context.WithCancel(context.Background())
	done := startDrain(h, ctx)
	// Drain runs in its own goroutine: only the waiter's end says it has
	// started (a hello sent before that is still welcome).
	waiter.expectClosed()
	h.join(t, newRelayToken(t), RoleDialer).expectRefused(RelayBusy)
	expectRelayed(t, a, b)

	cancel() // the deadline
	if r := <-done; r != (drainResult{1, 1}) {
		t.Fatalf("Drain = %+v, want 1 in progress, 1 cut", r)
	}
	a.expectClosed()
	b.expectClosed()
}
