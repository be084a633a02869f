package discovery

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"ferry/transport"
)

// TestMeetAgainExchangesCandidates: two peers holding the same key meet at
// a real mailbox server without any code, each leaving its candidates and
// taking the other's; a third party with another key meets no one.
func TestMeetAgainExchangesCandidates(t *testing.T) {
	rv := startRendezvous(t)
	key := bytes.Repeat([]byte{42}, 32)
	dialer := []transport.Announced{{Addr: netip.MustParseAddrPort("198.18.2.1:20000"), Type: transport.CandidateServerReflexive}}
	acceptor := []transport.Announced{
		{Addr: netip.MustParseAddrPort("10.2.0.2:7000"), Type: transport.CandidateHost},
		{Addr: netip.MustParseAddrPort("198.18.3.1:31000"), TCP: true, Type: transport.CandidateServerReflexive},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		cands []transport.Announced
		err   error
	}
	got := make(chan result, 1)
	go func() {
		c, err := MeetAgain(ctx, rv, key, transport.RoleAcceptor, acceptor)
		got <- result{c, err}
	}()
	d, err := MeetAgain(ctx, rv, key, transport.RoleDialer, dialer)
	if err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil {
		t.Fatal(a.err)
	}
	if !reflect.DeepEqual(d, acceptor) || !reflect.DeepEqual(a.cands, dialer) {
		t.Fatalf("dialer took %+v, acceptor took %+v", d, a.cands)
	}

	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	if _, err := MeetAgain(sctx, rv, bytes.Repeat([]byte{43}, 32), transport.RoleDialer, dialer); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a stranger met someone: %v", err)
	}
}

// TestMeetListSealing: a list opens only under the sender's role key, and
// a stale one (a replay by the server) is refused.
func TestMeetListSealing(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	now := time.Now()
	cands := []transport.Announced{{Addr: netip.MustParseAddrPort("198.18.2.1:20000"), Type: transport.CandidateServerReflexive}}
	b, err := sealMeetList(key, transport.RoleDialer, cands, now)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("198.18.2.1")) {
		t.Fatal("the address is readable in the sealed list")
	}
	if _, got, err := openMeetList(key, transport.RoleDialer, b, now); err != nil || !reflect.DeepEqual(got, cands) {
		t.Fatalf("open: %+v, %v", got, err)
	}
	if _, _, err := openMeetList(key, transport.RoleAcceptor, b, now); err == nil {
		t.Fatal("a list opened under the other direction's key (a reflection)")
	}
	if _, _, err := openMeetList(bytes.Repeat([]byte{2}, 32), transport.RoleDialer, b, now); err == nil {
		t.Fatal("a list opened under another pairing's key")
	}
	if _, _, err := openMeetList(key, transport.RoleDialer, b, now.Add(time.Hour)); err == nil {
		t.Fatal("an hour-old list was taken")
	}
}

// FuzzOpenMeetList: whatever plaintext a peer seals (a hostile peer holds
// the key), opening it never panics and yields only usable candidates.
func FuzzOpenMeetList(f *testing.F) {
	key := bytes.Repeat([]byte{5}, 32)
	f.Add([]byte(`{"at":0,"candidates":[{"addr":"198.18.2.1:20000","type":"srflx"}]}`))
	f.Add([]byte(`{"at":0,"candidates":[{"addr":"0.0.0.0:0","type":"host","tcp":true}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, plain []byte) {
		aead := meetAEAD(key, transport.RoleDialer)
		nonce := make([]byte, aead.NonceSize())
		b := aead.Seal(nonce, nonce, plain, nil)
		_, cands, err := openMeetList(key, transport.RoleDialer, b, time.UnixMilli(0))
		if err != nil {
			return
		}
		for _, c := range cands {
			if !transport.UsableCandidate(c.Addr) {
				t.Fatalf("opened an unusable candidate %v", c.Addr)
			}
		}
	})
}
