package mailbox

import (
	"testing"
	"time"
)

// TestStatsPairings: a pairing counts once, by its allocating side, and
// its outcome is that side's mood or how its connection ended; the gauges
// follow the nameplate and the mailbox.
func TestStatsPairings(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)

	a, b := checkPairing(t, ts.addr, ts.addr)
	if st := ts.s.Stats(); st.PairingsStarted != 1 || st.Nameplates != 1 || st.Mailboxes != 1 || st.Connections != 2 {
		t.Fatalf("mid-pairing stats %+v, want 1 started, 1 nameplate, 1 mailbox, 2 connections", st)
	}
	must(t, a.Release(ctx))
	must(t, b.Release(ctx))
	if st := ts.s.Stats(); st.Nameplates != 0 || st.Mailboxes != 1 {
		t.Fatalf("after release: %+v, want no nameplate, 1 mailbox", st)
	}
	must(t, b.Close(ctx, Happy)) // the claiming side: not its pairing
	must(t, a.Close(ctx, Happy))
	if st := ts.s.Stats(); st.PairingsCompleted != 1 || st.Mailboxes != 0 {
		t.Fatalf("after close: %+v, want 1 completed, no mailbox", st)
	}

	c := dial(t, ts.addr)
	np, err := c.Allocate(ctx)
	must(t, err)
	must(t, c.Claim(ctx, np))
	must(t, c.Close(ctx, Lonely))

	d := dial(t, ts.addr)
	np, err = d.Allocate(ctx)
	must(t, err)
	must(t, d.Claim(ctx, np))
	d.shutdown()
	waitFor(t, "the disconnect counted", func() bool { return ts.s.Stats().Connections == 0 })

	st := ts.s.Stats()
	if st.PairingsStarted != 3 || st.PairingsCompleted != 1 ||
		st.PairingsFailed[FailLonely] != 1 || st.PairingsFailed[FailDisconnected] != 1 {
		t.Fatalf("stats %+v, want 3 started, 1 completed, 1 lonely, 1 disconnected", st)
	}
	if st.Nameplates != 0 || st.Mailboxes != 0 {
		t.Fatalf("stats %+v, want no nameplate or mailbox left", st)
	}
}

// TestStatsExpiredAndLimits: an expired pairing and the per-address
// nameplate limit are counted.
func TestStatsExpiredAndLimits(t *testing.T) {
	ts := startServer(t, ServerConfig{NameplateTTL: 50 * time.Millisecond, MaxNameplatesPerIP: 1})
	ctx := testCtx(t)
	a := dial(t, ts.addr)
	np, err := a.Allocate(ctx)
	must(t, err)
	if _, err := a.Allocate(ctx); err == nil {
		t.Fatal("second allocation allowed past the limit")
	}
	must(t, a.Claim(ctx, np))
	_, err = a.Receive(ctx, "pake") // until the nameplate expires
	wantCode(t, err, CodeExpired)
	waitFor(t, "the connection to end", func() bool { return ts.s.Stats().Connections == 0 })
	st := ts.s.Stats()
	if st.PairingsFailed[FailExpired] != 1 || st.RateLimited[LimitNameplatesPerIP] != 1 {
		t.Fatalf("stats %+v, want 1 expired, 1 nameplate limit refusal", st)
	}
}
