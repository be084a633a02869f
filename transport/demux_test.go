package transport

import (
	"encoding/binary"
	"testing"
)

func TestClassify(t *testing.T) {
	stun := make([]byte, 20)
	stun[0], stun[1] = 0x00, 0x01 // Binding request
	binary.BigEndian.PutUint32(stun[4:], stunMagicCookie)
	stunResp := append([]byte(nil), stun...)
	stunResp[0] = 0x01
	noCookie := append([]byte(nil), stun...)
	noCookie[4] = 0
	for _, tc := range []struct {
		name string
		b    []byte
		want PacketClass
	}{
		{"empty", nil, ClassUnknown},
		{"quic short", []byte{0x41, 1, 2, 3}, ClassQUIC},
		{"quic long", []byte{0xc3, 0, 0, 0, 1}, ClassQUIC},
		{"stun request", stun, ClassSTUN},
		{"stun response", stunResp, ClassSTUN},
		{"stun without cookie", noCookie, ClassUnknown},
		{"stun truncated", stun[:19], ClassUnknown},
		{"control", []byte("\x21FRY\x01"), ClassControl},
		{"control bad magic", []byte("\x21FRX\x01"), ClassUnknown},
		{"0x80 without fixed bit", []byte{0x80, 0, 0, 0}, ClassUnknown},
		{"0x30", []byte{0x30, 'F', 'R', 'Y'}, ClassUnknown},
	} {
		if got := Classify(tc.b); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte{0x41, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("\x21FRY\x01"))
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Classify(b)
		switch c {
		case ClassQUIC:
			if b[0]&0x40 == 0 {
				t.Fatal("QUIC without the fixed bit")
			}
		case ClassSTUN:
			if len(b) < stunHeaderLen || b[0] > 1 {
				t.Fatal("STUN class for a non-STUN header")
			}
		case ClassControl:
			if b[0] >= 0x40 || b[0] < 0x20 {
				t.Fatal("control class outside 0x20-0x2f")
			}
		}
		// The classes are disjoint: a QUIC packet never parses as anything else.
		if b != nil && len(b) > 0 && b[0]&0x40 != 0 && c != ClassQUIC {
			t.Fatal("fixed bit set but not QUIC")
		}
	})
}
