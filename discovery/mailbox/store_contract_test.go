package mailbox

import (
	"errors"
	"testing"
	"time"
)

// testStoreContract checks that a Store keeps the contract documented on
// the Store interface. newStore returns an empty store; the store must be
// countable by storeLens.
func testStoreContract(t *testing.T, newStore func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Store)
	}{
		{"LowestFreeNameplate", contractLowestFreeNameplate},
		{"OwnerLimit", contractOwnerLimit},
		{"ClaimSemantics", contractClaimSemantics},
		{"UnknownNames", contractUnknownNames},
		{"Expiry", contractExpiry},
		{"BurnKeepsMailbox", contractBurnKeepsMailbox},
		{"DisconnectEndsOneClaim", contractDisconnectEndsOneClaim},
		{"Meet", contractMeet},
		{"MeetBadName", contractMeetBadName},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore(t)) })
	}
}

func TestMemStoreContract(t *testing.T) {
	testStoreContract(t, func(*testing.T) Store { return NewMemStore() })
}

// storeLens returns how many nameplates and mailboxes s holds.
func storeLens(t *testing.T, s Store) (nameplates, mailboxes int) {
	t.Helper()
	switch s := s.(type) {
	case *MemStore:
		return s.Len()
	case *RedisStore:
		n, m, err := s.Count(testCtx(t))
		must(t, err)
		return n, m
	}
	t.Fatalf("cannot count what a %T holds", s)
	return 0, 0
}

// waitChanged waits until a Watch's changed channel is closed.
func waitChanged(t *testing.T, changed <-chan struct{}) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(testTimeout):
		t.Fatal("changed was not closed")
	}
}

func contractUnknownNames(t *testing.T, s Store) {
	ctx := testCtx(t)
	if _, err := s.Claim(ctx, "1", "a"); !errors.Is(err, ErrNoSuchNameplate) {
		t.Fatalf("Claim of an unknown nameplate = %v", err)
	}
	must(t, s.Release(ctx, "1", "a"))
	if _, _, err := s.Watch(ctx, "m1", 0); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Watch of an unknown mailbox = %v", err)
	}
	if err := s.Add(ctx, "m1", Message{Side: "a", Phase: "p"}, 0); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Add to an unknown mailbox = %v", err)
	}
	must(t, s.Close(ctx, "m1", "a", Happy))
	must(t, s.Close(ctx, "m1", "a", ""))
	if exp, err := s.Expire(ctx, time.Now()); err != nil || len(exp) != 0 {
		t.Fatalf("Expire of an empty store = %v, %v", exp, err)
	}
}

func contractMeetBadName(t *testing.T, s Store) {
	ctx := testCtx(t)
	for _, name := range []string{"", "1", "7", meetName("k") + "="} {
		_, err := s.Meet(ctx, MeetRequest{Nameplate: name, Side: "a", Owner: "ip"})
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeBadRequest {
			t.Fatalf("Meet(%q) = %v, want %s", name, err, CodeBadRequest)
		}
	}
	if n, m := storeLens(t, s); n != 0 || m != 0 {
		t.Fatalf("bad meets left %d, %d", n, m)
	}
}

func contractLowestFreeNameplate(t *testing.T, s Store) {
	ctx := testCtx(t)
	alloc := func(want string) {
		t.Helper()
		np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
		if err != nil || np != want {
			t.Fatalf("Allocate = %q, %v; want %q", np, err, want)
		}
	}
	for _, want := range []string{"1", "2", "3", "4", "5"} {
		alloc(want)
	}
	must(t, s.Release(ctx, "4", "a"))
	must(t, s.Release(ctx, "2", "a"))
	alloc("2")
	alloc("4")
	alloc("6")
	must(t, s.Release(ctx, "1", "someone else")) // not the allocator: no effect
	alloc("7")
}

func contractOwnerLimit(t *testing.T, s Store) {
	ctx := testCtx(t)
	req := AllocateRequest{Owner: "10.0.0.1", Side: "a", MaxPerOwner: 2}
	np1, err := s.Allocate(ctx, req)
	must(t, err)
	_, err = s.Allocate(ctx, req)
	must(t, err)
	if _, err := s.Allocate(ctx, req); !errors.Is(err, ErrTooManyNameplates) {
		t.Fatalf("3rd allocate = %v", err)
	}
	if _, err := s.Allocate(ctx, AllocateRequest{Owner: "10.0.0.2", MaxPerOwner: 2}); err != nil {
		t.Fatalf("other owner: %v", err)
	}
	// The owner's count drops when a nameplate goes, whichever way.
	mb, err := s.Claim(ctx, np1, "a")
	must(t, err)
	must(t, s.Close(ctx, mb, "a", Scary))
	if _, err := s.Allocate(ctx, req); err != nil {
		t.Fatalf("allocate after burn: %v", err)
	}
}

func contractClaimSemantics(t *testing.T, s Store) {
	ctx := testCtx(t)
	t0 := time.Unix(1_000_000, 0)
	np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", Expires: t0.Add(time.Minute)})
	must(t, err)
	mbA, err := s.Claim(ctx, np, "a")
	must(t, err)
	if again, err := s.Claim(ctx, np, "a"); err != nil || again != mbA {
		t.Fatalf("re-claim = %q, %v", again, err)
	}
	mbB, err := s.Claim(ctx, np, "b")
	must(t, err)
	if mbA != mbB {
		t.Fatalf("sides got mailboxes %q and %q", mbA, mbB)
	}
	if _, err := s.Claim(ctx, np, "c"); !errors.Is(err, ErrCrowded) {
		t.Fatalf("third side = %v", err)
	}
	// Claimed by two sides: no longer expires.
	if exp, _ := s.Expire(ctx, t0.Add(time.Hour)); len(exp) != 0 {
		t.Fatalf("expired %v", exp)
	}
	if err := s.Add(ctx, mbA, Message{Side: "c", Phase: "p"}, 0); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("add by non-member = %v", err)
	}
	must(t, s.Add(ctx, mbA, Message{Side: "a", Phase: "p", Body: []byte("1")}, 2))
	msgs, changed, err := s.Watch(ctx, mbB, 0)
	must(t, err)
	if len(msgs) != 1 || string(msgs[0].Body) != "1" {
		t.Fatalf("Watch = %v", msgs)
	}
	select {
	case <-changed:
		t.Fatal("changed before any change")
	default:
	}
	must(t, s.Add(ctx, mbB, Message{Side: "b", Phase: "p", Body: []byte("2")}, 2))
	waitChanged(t, changed)
	msgs, _, err = s.Watch(ctx, mbA, 1)
	must(t, err)
	if len(msgs) != 1 || msgs[0].Side != "b" {
		t.Fatalf("Watch from 1 = %v", msgs)
	}
	if err := s.Add(ctx, mbA, Message{Side: "a", Phase: "p"}, 2); !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("add to full mailbox = %v", err)
	}

	// a closes: the nameplate stays while b holds it; b disconnecting frees
	// everything.
	must(t, s.Close(ctx, mbA, "a", Happy))
	if n, m := storeLens(t, s); n != 1 || m != 1 {
		t.Fatalf("after one close: %d, %d", n, m)
	}
	_, changed, err = s.Watch(ctx, mbB, 2)
	must(t, err)
	must(t, s.Close(ctx, mbB, "b", ""))
	waitChanged(t, changed)
	if n, m := storeLens(t, s); n != 0 || m != 0 {
		t.Fatalf("after both closed: %d, %d", n, m)
	}
	must(t, s.Close(ctx, mbB, "b", Happy)) // unknown mailbox: no error
}

func contractExpiry(t *testing.T, s Store) {
	ctx := testCtx(t)
	t0 := time.Unix(1_000_000, 0)
	np1, _ := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", Expires: t0.Add(time.Minute)})
	np2, _ := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", Expires: t0.Add(2 * time.Minute)})
	mb, err := s.Claim(ctx, np1, "a")
	must(t, err)
	_, changed, err := s.Watch(ctx, mb, 0)
	must(t, err)
	if exp, _ := s.Expire(ctx, t0.Add(59*time.Second)); len(exp) != 0 {
		t.Fatalf("expired early: %v", exp)
	}
	exp, _ := s.Expire(ctx, t0.Add(time.Minute))
	if len(exp) != 1 || exp[0] != np1 {
		t.Fatalf("expired %v, want [%s]", exp, np1)
	}
	waitChanged(t, changed)
	if _, _, err := s.Watch(ctx, mb, 0); !errors.Is(err, ErrExpired) {
		t.Fatalf("Watch after expiry = %v", err)
	}
	if err := s.Add(ctx, mb, Message{Side: "a", Phase: "p"}, 0); !errors.Is(err, ErrExpired) {
		t.Fatalf("Add after expiry = %v", err)
	}
	if _, err := s.Claim(ctx, np1, "b"); !errors.Is(err, ErrNoSuchNameplate) {
		t.Fatalf("Claim after expiry = %v", err)
	}
	must(t, s.Close(ctx, mb, "a", ""))
	exp, _ = s.Expire(ctx, t0.Add(time.Hour))
	if len(exp) != 1 || exp[0] != np2 {
		t.Fatalf("expired %v, want [%s]", exp, np2)
	}
	if n, m := storeLens(t, s); n != 0 || m != 0 {
		t.Fatalf("left %d, %d", n, m)
	}
}

func contractBurnKeepsMailbox(t *testing.T, s Store) {
	ctx := testCtx(t)
	np, _ := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
	mb, _ := s.Claim(ctx, np, "a")
	_, _ = s.Claim(ctx, np, "b")
	must(t, s.Close(ctx, mb, "b", Scary))
	if _, err := s.Claim(ctx, np, "c"); !errors.Is(err, ErrNoSuchNameplate) {
		t.Fatalf("claim of burned nameplate = %v", err)
	}
	// The number is free again for a new transfer, with a new mailbox.
	np2, _ := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "c"})
	mb2, _ := s.Claim(ctx, np2, "c")
	if np2 != np || mb2 == mb {
		t.Fatalf("reallocated %q -> mailbox %q (old %q)", np2, mb2, mb)
	}
	// a still uses the old mailbox.
	must(t, s.Add(ctx, mb, Message{Side: "a", Phase: "p"}, 0))
	must(t, s.Close(ctx, mb, "a", Lonely))
	if n, m := storeLens(t, s); n != 1 || m != 1 {
		t.Fatalf("left %d, %d; want the new transfer only", n, m)
	}
}

func contractDisconnectEndsOneClaim(t *testing.T, s Store) {
	ctx := testCtx(t)
	np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", Expires: time.Now().Add(time.Minute)})
	must(t, err)
	mb, err := s.Claim(ctx, np, "a")
	must(t, err)
	_, err = s.Claim(ctx, np, "b")
	must(t, err)
	_, err = s.Claim(ctx, np, "a") // a again, from a new connection
	must(t, err)

	must(t, s.Close(ctx, mb, "a", "")) // the old connection dies
	must(t, s.Add(ctx, mb, Message{Side: "a", Phase: "p"}, 0))
	must(t, s.Close(ctx, mb, "b", Happy))
	if n, m := storeLens(t, s); n != 1 || m != 1 {
		t.Fatalf("with a still connected: %d nameplates, %d mailboxes; want 1, 1", n, m)
	}
	must(t, s.Close(ctx, mb, "a", "")) // the new one ends too
	if n, m := storeLens(t, s); n != 0 || m != 0 {
		t.Fatalf("after both left: %d, %d", n, m)
	}

	// A mood ends the side at once, however often it claimed.
	np, err = s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", Expires: time.Now().Add(time.Minute)})
	must(t, err)
	mb, err = s.Claim(ctx, np, "a")
	must(t, err)
	_, err = s.Claim(ctx, np, "a")
	must(t, err)
	must(t, s.Close(ctx, mb, "a", Lonely))
	if n, m := storeLens(t, s); n != 0 || m != 0 {
		t.Fatalf("after a closed lonely: %d, %d", n, m)
	}
}

func contractMeet(t *testing.T, s Store) {
	ctx := testCtx(t)
	t0 := time.Unix(1_000_000, 0)
	name := meetName("k")
	req := MeetRequest{Nameplate: name, Side: "a", Owner: "ip", Expires: t0.Add(time.Minute), MaxPerOwner: 1}

	if _, err := s.Meet(ctx, MeetRequest{Nameplate: "1", Side: "a", Owner: "ip"}); !errors.Is(err, errBadMeetNameplate) {
		t.Fatalf("meet of a decimal name = %v", err)
	}
	mbA, err := s.Meet(ctx, req)
	must(t, err)
	if again, err := s.Meet(ctx, req); err != nil || again != mbA {
		t.Fatalf("meet again = %q, %v", again, err)
	}
	// The owner's one nameplate is the meet one.
	if _, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", MaxPerOwner: 1}); !errors.Is(err, ErrTooManyNameplates) {
		t.Fatalf("allocate past the limit = %v", err)
	}
	// The second side joins without a charge (its owner is at its limit
	// too), by meet or by claim; a third is crowded.
	req.Side = "b"
	mbB, err := s.Meet(ctx, req)
	must(t, err)
	if mbB != mbA {
		t.Fatalf("sides got mailboxes %q and %q", mbA, mbB)
	}
	if _, err := s.Claim(ctx, name, "c"); !errors.Is(err, ErrCrowded) {
		t.Fatalf("third side = %v", err)
	}
	if exp, _ := s.Expire(ctx, t0.Add(time.Hour)); len(exp) != 0 {
		t.Fatalf("met by two sides, yet expired %v", exp)
	}
	must(t, s.Close(ctx, mbA, "a", Happy))
	must(t, s.Close(ctx, mbB, "b", Happy))
	if n, m := storeLens(t, s); n != 0 || m != 0 {
		t.Fatalf("after both closed: %d, %d", n, m)
	}
	// Freeing a meet nameplate frees no number.
	if np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip"}); err != nil || np != "1" {
		t.Fatalf("Allocate = %q, %v; want 1", np, err)
	}

	// One side only: it expires, and the name is then created afresh.
	mb, err := s.Meet(ctx, MeetRequest{Nameplate: name, Side: "a", Owner: "ip2", Expires: t0.Add(time.Minute)})
	must(t, err)
	if exp, _ := s.Expire(ctx, t0.Add(time.Minute)); len(exp) != 1 || exp[0] != name {
		t.Fatalf("Expire = %v", exp)
	}
	if _, _, err := s.Watch(ctx, mb, 0); !errors.Is(err, ErrExpired) {
		t.Fatalf("Watch after expiry = %v", err)
	}
	mb2, err := s.Meet(ctx, MeetRequest{Nameplate: name, Side: "c", Owner: "ip2"})
	must(t, err)
	if mb2 == mb {
		t.Fatal("expired meet nameplate kept its mailbox")
	}
	if np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip"}); err != nil || np != "2" {
		t.Fatalf("Allocate = %q, %v; want 2", np, err)
	}
}
