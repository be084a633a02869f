package transport

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func testKey(t testing.TB, b byte) *ControlKey {
	t.Helper()
	k, err := derivePairingKeys(bytes.Repeat([]byte{b}, 32), RoleDialer)
	if err != nil {
		t.Fatal(err)
	}
	return k.hello.send
}

func TestControlRoundTrip(t *testing.T) {
	k := testKey(t, 7)
	for _, p := range []ControlPacket{
		{Type: CtrlPing, Flags: FlagActivePath, Counter: 1, Data: [8]byte{1, 2, 3}},
		{Type: CtrlPong, Counter: 1 << 40, Data: [8]byte{9}},
		{Type: CtrlPathChallenge, Counter: 7, Data: [8]byte{0xff}},
		{Type: CtrlPathResponse, Flags: FlagActivePath, Counter: 8},
		{Type: CtrlPunch, Counter: 9, Data: [8]byte{4, 4}},
		{Type: CtrlHello, Counter: 2, Nonce: Nonce{1, 2}},
		{Type: CtrlProbe, Counter: 3, Data: [8]byte{5}, Echo: [8]byte{6}, Nonce: Nonce{1}, PeerNonce: Nonce{2}},
		{Type: CtrlCandidatesAck, Counter: 4, Data: [8]byte{7}},
	} {
		p.Session = SessionID{1, 2, 3, 4, 5, 6, 7, 8}
		b := AppendControl(nil, &p, k)
		if Classify(b) != ClassControl {
			t.Fatalf("%v: classified as %v", p.Type, Classify(b))
		}
		if len(b) != controlLen(p.Type) {
			t.Fatalf("%v: %d bytes, want %d", p.Type, len(b), controlLen(p.Type))
		}
		got, err := ParseControl(b)
		if err != nil {
			t.Fatalf("%v: %v", p.Type, err)
		}
		if !reflect.DeepEqual(*got, p) {
			t.Fatalf("%v: round trip gave %+v, want %+v", p.Type, *got, p)
		}
		if err := VerifyControl(b, k); err != nil {
			t.Fatalf("%v: %v", p.Type, err)
		}
	}
}

// TestControlAnswersNeverAmplify: every answer type has the length of what
// it answers.
func TestControlAnswersNeverAmplify(t *testing.T) {
	for q, a := range map[ControlType]ControlType{CtrlPing: CtrlPong, CtrlPunch: CtrlPong, CtrlPathChallenge: CtrlPathResponse, CtrlHello: CtrlProbe, CtrlProbe: CtrlProbe, CtrlCandidates: CtrlCandidatesAck} {
		if controlLen(a) > controlLen(q) {
			t.Errorf("%v (%d bytes) is answered by %v (%d bytes)", q, controlLen(q), a, controlLen(a))
		}
	}
}

func TestControlRejectsForgedAndTruncated(t *testing.T) {
	k, other := testKey(t, 7), testKey(t, 8)
	p := ControlPacket{Type: CtrlProbe, Session: SessionID{1}, Counter: 5, Data: [8]byte{1}, Nonce: Nonce{3}}
	good := AppendControl(nil, &p, k)
	check := func(b []byte) error {
		if _, err := ParseControl(b); err != nil {
			return err
		}
		return VerifyControl(b, k)
	}
	for i := range len(good) {
		if check(good[:i]) == nil {
			t.Fatalf("truncated to %d bytes: accepted", i)
		}
	}
	for i := range len(good) {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		if check(bad) == nil {
			t.Fatalf("bit flip at byte %d: accepted", i)
		}
	}
	// Signed with the wrong key.
	if err := check(AppendControl(nil, &p, other)); !errors.Is(err, ErrControlAuth) {
		t.Fatalf("forged MAC: err = %v, want ErrControlAuth", err)
	}
	// Version 1 (ferry before fresh attempt keys) and future versions.
	v1 := bytes.Clone(good)
	v1[4] = 1
	if _, err := ParseControl(v1); !errors.Is(err, ErrControlVersion) {
		t.Fatalf("version 1: err = %v, want ErrControlVersion", err)
	}
	// Trailing garbage; an established type at a connecting type's length.
	if check(append(bytes.Clone(good), 0)) == nil {
		t.Fatal("trailing byte: accepted")
	}
	ping := bytes.Clone(good)
	ping[0] = byte(CtrlPing)
	if _, err := ParseControl(ping); !errors.Is(err, ErrControlFormat) {
		t.Fatalf("PING of a PROBE's length: err = %v, want ErrControlFormat", err)
	}
}

// TestKeysAreFreshPerAttemptAndDirection: every attempt and each direction
// of it has its own keys and session ID, and both sides derive the same.
func TestKeysAreFreshPerAttemptAndDirection(t *testing.T) {
	shared := bytes.Repeat([]byte{1}, 32)
	if _, err := derivePairingKeys(shared[:16], RoleDialer); err == nil {
		t.Fatal("16-byte key accepted")
	}
	d, _ := derivePairingKeys(shared, RoleDialer)
	a, _ := derivePairingKeys(shared, RoleAcceptor)
	if d.session != a.session || d.hello.send.key != a.hello.recv.key || d.hello.recv.key != a.hello.send.key {
		t.Fatal("the two sides of a pairing derived different hello keys")
	}
	if d.hello.send.key == d.hello.recv.key {
		t.Fatal("hello keys do not differ by direction")
	}
	nd, na := Nonce{1}, Nonce{2}
	kd, ka := d.attempt(RoleDialer, nd, na), a.attempt(RoleAcceptor, na, nd)
	if kd.session != ka.session || kd.send.key != ka.recv.key || kd.recv.key != ka.send.key {
		t.Fatal("the two sides of an attempt derived different keys")
	}
	if kd.send.key == kd.recv.key || kd.send.key == d.hello.send.key {
		t.Fatal("attempt keys repeat another key")
	}
	again := d.attempt(RoleDialer, Nonce{3}, na)
	if again.session == kd.session || again.send.key == kd.send.key {
		t.Fatal("a new dialer nonce gave the same attempt keys")
	}
	other, _ := derivePairingKeys(bytes.Repeat([]byte{2}, 32), RoleDialer)
	if other.session == d.session || other.attempt(RoleDialer, nd, na).send.key == kd.send.key {
		t.Fatal("different shared keys derived equal values")
	}
}

func FuzzParseControl(f *testing.F) {
	k := testKey(f, 7)
	for _, p := range []ControlPacket{
		{Type: CtrlPing, Counter: 1},
		{Type: CtrlPathResponse, Flags: FlagActivePath, Counter: 2},
		{Type: CtrlHello, Counter: 3, Nonce: Nonce{1}},
		{Type: CtrlProbe, Counter: 4, Data: [8]byte{1}, Echo: [8]byte{2}, Nonce: Nonce{3}, PeerNonce: Nonce{4}},
	} {
		f.Add(AppendControl(nil, &p, k))
	}
	f.Add([]byte("\x21FRY\x02"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseControl(b)
		if err != nil {
			return
		}
		if !controlLenOK(p.Type, len(b)) {
			t.Fatalf("parsed a %v of %d bytes", p.Type, len(b))
		}
		// Whatever parses and verifies must re-encode to the same bytes.
		if VerifyControl(b, k) != nil {
			return
		}
		if again := AppendControl(nil, p, k); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
