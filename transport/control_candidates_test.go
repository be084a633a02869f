package transport

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
)

func sampleAnnounced() []Announced {
	return []Announced{
		{Addr: netip.MustParseAddrPort("10.1.0.7:6000"), Type: CandidateHost},
		{Addr: netip.MustParseAddrPort("198.18.2.1:20000"), Type: CandidateServerReflexive},
		{Addr: netip.MustParseAddrPort("[2001:db8::7]:6000"), Type: CandidateHost},
		{Addr: netip.MustParseAddrPort("198.18.2.1:31000"), TCP: true, Type: CandidateServerReflexive},
	}
}

// TestCandidatesRoundTrip: a CANDIDATES packet carries its list encrypted
// (the plaintext addresses are not on the wire), verifies under the
// sender's key, and opens to the same list under the receiver's.
func TestCandidatesRoundTrip(t *testing.T) {
	var k pairingKeys
	var err error
	if k, err = derivePairingKeys(bytes.Repeat([]byte{7}, 32), RoleDialer); err != nil {
		t.Fatal(err)
	}
	kd := k.attempt(RoleDialer, Nonce{1}, Nonce{2})
	ka := func() attemptKeys {
		k2, _ := derivePairingKeys(bytes.Repeat([]byte{7}, 32), RoleAcceptor)
		return k2.attempt(RoleAcceptor, Nonce{2}, Nonce{1})
	}()
	cands := sampleAnnounced()
	p := &ControlPacket{Type: CtrlCandidates, Session: kd.session, Counter: 9, Data: [8]byte{0, 0, 0, 0, 0, 0, 0, 3}}
	p.Payload = sealCandidates(cands, &kd.sealSend, p.Session, p.Counter)
	b := AppendControl(nil, p, kd.send)
	if bytes.Contains(b, []byte{198, 18, 2, 1}) || bytes.Contains(b, []byte{10, 1, 0, 7}) {
		t.Fatal("an announced address is in the clear on the wire")
	}
	got, err := ParseControl(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyControl(b, ka.recv); err != nil {
		t.Fatal(err)
	}
	list, err := openCandidates(got, &ka.sealRecv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(list, cands) {
		t.Fatalf("opened %+v, want %+v", list, cands)
	}
	// Any flipped bit fails the MAC; the wrong direction's key fails too.
	b[len(b)-controlMACLen-1] ^= 1
	if VerifyControl(b, ka.recv) == nil {
		t.Fatal("a tampered CANDIDATES verified")
	}
	if VerifyControl(AppendControl(nil, p, kd.send), kd.recv) == nil {
		t.Fatal("a CANDIDATES reflected to its sender verified")
	}
}

// TestCandidatesPlainRefusesMalformed: bad counts, families, types, flags,
// unusable addresses and trailing bytes are refused whole.
func TestCandidatesPlainRefusesMalformed(t *testing.T) {
	good := appendCandidatesPlain(nil, sampleAnnounced())
	if _, err := parseCandidatesPlain(good); err != nil {
		t.Fatal(err)
	}
	v4 := func(flags, family byte, addr []byte, port uint16) []byte {
		b := []byte{1, flags, family}
		b = append(b, addr...)
		return append(b, byte(port>>8), byte(port))
	}
	for name, b := range map[string][]byte{
		"empty":          {},
		"count too big":  {maxAnnounced + 1},
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0),
		"family 5":       v4(byte(CandidateHost)<<4, 5, []byte{10, 0, 0, 1}, 1),
		"type 0":         v4(0, 4, []byte{10, 0, 0, 1}, 1),
		"type relay":     v4(byte(CandidateRelay)<<4, 4, []byte{10, 0, 0, 1}, 1),
		"unknown flag":   v4(byte(CandidateHost)<<4|2, 4, []byte{10, 0, 0, 1}, 1),
		"port 0":         v4(byte(CandidateHost)<<4, 4, []byte{10, 0, 0, 1}, 0),
		"broadcast":      v4(byte(CandidateHost)<<4, 4, []byte{255, 255, 255, 255}, 1),
		"multicast":      v4(byte(CandidateHost)<<4, 4, []byte{224, 0, 0, 1}, 1),
		"v4 as family 6": append([]byte{1, byte(CandidateHost) << 4, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}, 0, 1),
	} {
		if _, err := parseCandidatesPlain(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// FuzzParseCandidates: whatever parses re-encodes to the same bytes, and
// every candidate it yields may be probed.
func FuzzParseCandidates(f *testing.F) {
	f.Add(appendCandidatesPlain(nil, sampleAnnounced()))
	f.Add(appendCandidatesPlain(nil, nil))
	f.Add([]byte{1, 0x10, 4, 10, 0, 0, 1, 0, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cands, err := parseCandidatesPlain(b)
		if err != nil {
			return
		}
		for _, c := range cands {
			if !UsableCandidate(c.Addr) {
				t.Fatalf("parsed an unusable candidate %v", c.Addr)
			}
		}
		if again := appendCandidatesPlain(nil, cands); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
