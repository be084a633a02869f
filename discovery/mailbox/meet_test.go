package mailbox

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// meetName returns a valid meet nameplate derived from seed, as peers
// derive one from their shared key.
func meetName(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return MeetPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

func dialSide(t testing.TB, addr, side string) *Client {
	t.Helper()
	c, err := DialSide(testCtx(t), addr, side)
	if err != nil {
		t.Fatalf("DialSide: %v", err)
	}
	t.Cleanup(c.shutdown)
	return c
}

const (
	sideA = "aaaaaaaaaaaaaaa1"
	sideB = "bbbbbbbbbbbbbbb2"
)

func TestValidMeetNameplate(t *testing.T) {
	good := meetName("k")
	if !ValidMeetNameplate(good) || len(good) != len(MeetPrefix)+43 {
		t.Fatalf("%q rejected", good)
	}
	rest := strings.TrimPrefix(good, MeetPrefix)
	for _, bad := range []string{
		"", "7", MeetPrefix, rest, "MEET-" + rest, "meet_" + rest,
		good[:len(good)-1], good + "A", good + "=",
		MeetPrefix + "+" + rest[1:], // standard, not URL, alphabet
		MeetPrefix + "/" + rest[1:],
		MeetPrefix + rest[:42] + "B", // non-zero unused bits: not canonical
		MeetPrefix + strings.Repeat("A", 42) + "==",
	} {
		if ValidMeetNameplate(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMeetExchangeRejoinAndAfresh(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	name := meetName("shared key")

	a, b := dialSide(t, ts.addr, sideA), dialSide(t, ts.addr, sideB)
	must(t, a.Meet(ctx, name))
	must(t, b.Meet(ctx, name))
	if err := a.Meet(ctx, name); !errors.Is(err, ErrAlreadyClaimed) {
		t.Fatalf("second meet on one connection = %v", err)
	}
	must(t, a.Add(ctx, "pake", []byte("from A")))
	expectMsg(t, b, "pake", "from A")
	must(t, b.Add(ctx, "offer", []byte("from B")))
	expectMsg(t, a, "offer", "from B")
	if n, m := ts.lens(); n != 1 || m != 1 {
		t.Fatalf("%d nameplates, %d mailboxes; want 1, 1", n, m)
	}
	// A meet nameplate takes no number: allocate still starts at 1.
	x := dial(t, ts.addr)
	if np, err := x.Allocate(ctx); err != nil || np != "1" {
		t.Fatalf("Allocate = %q, %v; want 1", np, err)
	}
	must(t, x.Close(ctx, Lonely))

	// A's network changes: its connection drops and it comes back under
	// the same side. It rejoins the mailbox and gets B's earlier message.
	a.shutdown()
	waitFor(t, "server to drop A", func() bool { return ts.s.connCount() == 1 })
	a2 := dialSide(t, ts.addr, sideA)
	must(t, a2.Meet(ctx, name))
	expectMsg(t, a2, "offer", "from B")
	must(t, a2.Add(ctx, "again", []byte("A is back")))
	expectMsg(t, b, "again", "A is back")

	// A third side is one too many.
	c := dial(t, ts.addr)
	if err := c.Meet(ctx, name); !errors.Is(err, ErrCrowded) {
		t.Fatalf("third side = %v, want crowded", err)
	}
	must(t, c.Close(ctx, Lonely))

	must(t, a2.Close(ctx, Happy))
	must(t, b.Close(ctx, Happy))
	waitFor(t, "everything freed", func() bool { n, m := ts.lens(); return n == 0 && m == 0 })

	// The name can be met afresh, by any two sides, in a new mailbox.
	d, e := dial(t, ts.addr), dial(t, ts.addr)
	must(t, d.Meet(ctx, name))
	must(t, e.Meet(ctx, name))
	must(t, d.Add(ctx, "offer", []byte("fresh")))
	expectMsg(t, e, "offer", "fresh") // not B's old "offer"
}

func TestMeetBadNameplate(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	good := meetName("k")
	for _, np := range []any{nil, "", "7", "1", good[:len(good)-1], good + "=", "meet-" + strings.Repeat("+", 43)} {
		r := dialRaw(t, ts.addr)
		r.hello()
		req := obj{"type": "meet", "id": 3}
		if np != nil {
			req["nameplate"] = np
		}
		r.send(req)
		if f := r.expectError(CodeBadRequest); f["id"] != 3.0 {
			t.Fatalf("meet %v: error id %v", np, f["id"])
		}
		r.expectEOF()
	}
	if n, m := ts.lens(); n != 0 || m != 0 {
		t.Fatalf("bad meets left %d nameplates, %d mailboxes", n, m)
	}

	// The client refuses before asking and stays connected.
	ctx := testCtx(t)
	c := dial(t, ts.addr)
	wantCode(t, c.Meet(ctx, "7"), CodeBadRequest)
	if err := c.Release(ctx); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Release after a refused meet = %v", err)
	}
}

func TestMeetCountsAgainstPerIPLimit(t *testing.T) {
	ts := startServer(t, ServerConfig{MaxNameplatesPerIP: 2})
	ctx := testCtx(t)
	n1, n2 := meetName("one"), meetName("two")
	a, b, c := dial(t, ts.addr), dial(t, ts.addr), dial(t, ts.addr)
	must(t, a.Meet(ctx, n1))
	_, err := b.Allocate(ctx)
	must(t, err)
	if err := c.Meet(ctx, n2); !errors.Is(err, ErrTooManyNameplates) {
		t.Fatalf("meet past the limit = %v", err)
	}
	if _, err := b.Allocate(ctx); !errors.Is(err, ErrTooManyNameplates) {
		t.Fatalf("allocate past the limit = %v", err)
	}
	// Joining an existing meet nameplate creates nothing.
	d := dial(t, ts.addr)
	must(t, d.Meet(ctx, n1))
	must(t, a.Close(ctx, Happy))
	must(t, d.Close(ctx, Happy))
	waitFor(t, "meet nameplate freed", func() bool { n, _ := ts.lens(); return n == 1 })
	must(t, c.Meet(ctx, n2))
}

func TestMeetExpiry(t *testing.T) {
	ts := startServer(t, ServerConfig{NameplateTTL: 100 * time.Millisecond})
	ctx := testCtx(t)
	name := meetName("k")
	a := dialSide(t, ts.addr, sideA)
	must(t, a.Meet(ctx, name))
	_, err := a.Receive(ctx, "pake")
	if !errors.Is(err, ErrExpired) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive on expired meet nameplate = %v", err)
	}
	waitFor(t, "expired meet nameplate freed", func() bool { n, m := ts.lens(); return n == 0 && m == 0 })
	// Gone: two new sides meet under it without A counting as one.
	b, c := dial(t, ts.addr), dial(t, ts.addr)
	must(t, b.Meet(ctx, name))
	must(t, c.Meet(ctx, name))
}

func TestDialSide(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	for _, side := range []string{"", "short", "0123456789ABCDEF", "0123456789abcdeg", "0123456789abcdef0"} {
		if c, err := DialSide(testCtx(t), ts.addr, side); err == nil {
			c.shutdown()
			t.Fatalf("DialSide(%q) succeeded", side)
		}
	}
	if c := dialSide(t, ts.addr, sideA); c.Side() != sideA {
		t.Fatalf("Side() = %q", c.Side())
	}
}

// A side whose network changed often reconnects before the server notices
// its old connection is dead. When the old one finally goes, the side must
// keep its place in the mailbox.
func TestMeetRejoinBeforeOldConnectionDies(t *testing.T) {
	ts := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	name := meetName("rejoin early")

	a, b := dialSide(t, ts.addr, sideA), dialSide(t, ts.addr, sideB)
	must(t, a.Meet(ctx, name))
	must(t, b.Meet(ctx, name))

	a2 := dialSide(t, ts.addr, sideA)
	must(t, a2.Meet(ctx, name))
	a.shutdown()
	waitFor(t, "server to drop A's old connection", func() bool { return ts.s.connCount() == 2 })

	must(t, b.Add(ctx, "offer", []byte("still there?")))
	expectMsg(t, a2, "offer", "still there?")
	must(t, a2.Add(ctx, "answer", []byte("yes")))
	expectMsg(t, b, "answer", "yes")
	if n, m := ts.lens(); n != 1 || m != 1 {
		t.Fatalf("%d nameplates, %d mailboxes; want 1, 1", n, m)
	}

	// The last claim's disconnect does end the side, as before.
	a2.shutdown()
	waitFor(t, "server to drop A", func() bool { return ts.s.connCount() == 1 })
	must(t, b.Close(ctx, Happy))
	waitFor(t, "everything freed", func() bool { n, m := ts.lens(); return n == 0 && m == 0 })
}
