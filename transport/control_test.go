package transport

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func testKeys(t testing.TB) peerKeys {
	t.Helper()
	k, err := derivePeerKeys(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyLookup(k peerKeys) func(SessionID) *ControlKey {
	return func(id SessionID) *ControlKey {
		if id == k.session {
			return k.control
		}
		return nil
	}
}

func TestControlRoundTrip(t *testing.T) {
	k := testKeys(t)
	for _, p := range []ControlPacket{
		{Type: CtrlPing, Flags: FlagPrimary, Data: [8]byte{1, 2, 3}},
		{Type: CtrlPong, Data: [8]byte{9}, Observed: netip.MustParseAddrPort("198.18.0.7:4242")},
		{Type: CtrlPathChallenge, Flags: FlagFromAcceptor, Data: [8]byte{0xff}},
		{Type: CtrlPathResponse, Flags: FlagFromAcceptor | FlagPrimary, Observed: netip.MustParseAddrPort("[2001:db8::1]:9")},
		{Type: CtrlPunch, Data: [8]byte{4, 4}},
	} {
		p.Session = k.session
		b := AppendControl(nil, &p, k.control)
		if Classify(b) != ClassControl {
			t.Fatalf("%v: classified as %v", p.Type, Classify(b))
		}
		got, err := ParseControl(b, keyLookup(k))
		if err != nil {
			t.Fatalf("%v: %v", p.Type, err)
		}
		if *got != p {
			t.Fatalf("%v: round trip gave %+v, want %+v", p.Type, *got, p)
		}
	}
}

func TestControlRejectsForgedAndTruncated(t *testing.T) {
	k := testKeys(t)
	other, _ := derivePeerKeys(bytes.Repeat([]byte{8}, 32))
	p := ControlPacket{Type: CtrlPathResponse, Session: k.session, Data: [8]byte{1}, Observed: netip.MustParseAddrPort("10.0.0.1:1")}
	good := AppendControl(nil, &p, k.control)

	for i := range len(good) {
		if _, err := ParseControl(good[:i], keyLookup(k)); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", i)
		}
	}
	for i := range len(good) {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		if _, err := ParseControl(bad, keyLookup(k)); err == nil {
			t.Fatalf("bit flip at byte %d: accepted", i)
		}
	}
	// Signed with the wrong key, claiming the right session.
	forged := AppendControl(nil, &p, other.control)
	if _, err := ParseControl(forged, keyLookup(k)); !errors.Is(err, ErrControlAuth) {
		t.Fatalf("forged MAC: err = %v, want ErrControlAuth", err)
	}
	// Unknown session.
	if _, err := ParseControl(good, keyLookup(other)); !errors.Is(err, ErrControlAuth) {
		t.Fatalf("unknown session: err = %v, want ErrControlAuth", err)
	}
	// Future version.
	v2 := bytes.Clone(good)
	v2[4] = 2
	if _, err := ParseControl(v2, keyLookup(k)); !errors.Is(err, ErrControlVersion) {
		t.Fatalf("version 2: err = %v, want ErrControlVersion", err)
	}
	// Trailing garbage.
	if _, err := ParseControl(append(bytes.Clone(good), 0), keyLookup(k)); err == nil {
		t.Fatal("trailing byte: accepted")
	}
}

func TestDerivePeerKeysRejectsShortKey(t *testing.T) {
	if _, err := derivePeerKeys(make([]byte, 16)); err == nil {
		t.Fatal("16-byte key accepted")
	}
	a, _ := derivePeerKeys(bytes.Repeat([]byte{1}, 32))
	b, _ := derivePeerKeys(bytes.Repeat([]byte{2}, 32))
	if a.session == b.session || a.control.key == b.control.key {
		t.Fatal("different shared keys derived equal values")
	}
}

func FuzzParseControl(f *testing.F) {
	k := testKeys(f)
	for _, p := range []ControlPacket{
		{Type: CtrlPing, Session: k.session},
		{Type: CtrlPong, Session: k.session, Observed: netip.MustParseAddrPort("1.2.3.4:5")},
		{Type: CtrlPathResponse, Session: k.session, Observed: netip.MustParseAddrPort("[::1]:5")},
	} {
		f.Add(AppendControl(nil, &p, k.control))
	}
	f.Add([]byte("\x21FRY\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseControl(b, keyLookup(k))
		if err != nil {
			return
		}
		// Whatever parses must re-encode to the same bytes.
		if again := AppendControl(nil, p, k.control); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
