package mailbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemStoreLowestFreeNameplate(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
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

func TestMemStoreOwnerLimit(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
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

func TestMemStoreClaimSemantics(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
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
	<-changed
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
	if n, m := s.Len(); n != 1 || m != 1 {
		t.Fatalf("after one close: %d, %d", n, m)
	}
	_, changed, err = s.Watch(ctx, mbB, 2)
	must(t, err)
	must(t, s.Close(ctx, mbB, "b", ""))
	<-changed
	if n, m := s.Len(); n != 0 || m != 0 {
		t.Fatalf("after both closed: %d, %d", n, m)
	}
	must(t, s.Close(ctx, mbB, "b", Happy)) // unknown mailbox: no error
}

func TestMemStoreExpiry(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
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
	<-changed
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
	if n, m := s.Len(); n != 0 || m != 0 {
		t.Fatalf("left %d, %d", n, m)
	}
}

func TestMemStoreBurnKeepsMailbox(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
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
	if n, m := s.Len(); n != 1 || m != 1 {
		t.Fatalf("left %d, %d; want the new transfer only", n, m)
	}
}

func TestMemStoreDisconnectEndsOneClaim(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
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
	if n, m := s.Len(); n != 1 || m != 1 {
		t.Fatalf("with a still connected: %d nameplates, %d mailboxes; want 1, 1", n, m)
	}
	must(t, s.Close(ctx, mb, "a", "")) // the new one ends too
	if n, m := s.Len(); n != 0 || m != 0 {
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
	if n, m := s.Len(); n != 0 || m != 0 {
		t.Fatalf("after a closed lonely: %d, %d", n, m)
	}
}
