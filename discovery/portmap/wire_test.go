package portmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestPMPMapRequest(t *testing.T) {
	b, err := appendPMPMap(nil, "udp", 40000, 40001, 90*time.Second+time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 1, 0, 0, 0x9c, 0x40, 0x9c, 0x41, 0, 0, 0, 91}
	if !bytes.Equal(b, want) {
		t.Errorf("request % x, want % x", b, want)
	}
	if _, err := appendPMPMap(nil, "sctp", 1, 1, time.Second); err == nil {
		t.Error("sctp accepted")
	}
}

func TestParsePMP(t *testing.T) {
	ext := []byte{0, 128, 0, 0, 0, 0, 0, 9, 198, 18, 1, 2}
	a, err := parsePMPExternal(ext)
	if err != nil || a != netip.MustParseAddr("198.18.1.2") {
		t.Errorf("external = %v, %v", a, err)
	}
	m, err := parsePMPMap([]byte{0, 129, 0, 0, 0, 0, 0, 9, 0x9c, 0x40, 0x9c, 0x41, 0, 0, 0, 60}, pmpOpMapUDP, 40000)
	if err != nil || m != (pmpMapping{internal: 40000, external: 40001, lifetime: time.Minute}) {
		t.Errorf("map = %+v, %v", m, err)
	}
	// A refusal may be cut after the result code.
	_, err = parsePMPMap([]byte{0, 129, 0, 2}, pmpOpMapUDP, 40000)
	var re *ResultError
	if !errors.As(err, &re) || re.Code != 2 || re.Protocol != NATPMP {
		t.Errorf("refusal = %v", err)
	}
	for name, b := range map[string][]byte{
		"short":         ext[:11],
		"version":       append([]byte{1}, ext[1:]...),
		"opcode":        append([]byte{0, 129}, ext[2:]...),
		"empty":         nil,
		"other port":    {0, 129, 0, 0, 0, 0, 0, 9, 0x9c, 0x41, 0x9c, 0x41, 0, 0, 0, 60},
		"pcp's version": {2, 128, 0, 1},
	} {
		_, err1 := parsePMPExternal(b)
		_, err2 := parsePMPMap(b, pmpOpMapUDP, 40000)
		if !errors.Is(err1, errMalformed) || !errors.Is(err2, errMalformed) {
			t.Errorf("%s: errors %v, %v, want malformed", name, err1, err2)
		}
	}
}

// pcpMapResponse builds a MAP response to r granting ext for lifetime.
func pcpMapResponse(r pcpMapRequest, code byte, ext netip.AddrPort, lifetime uint32) []byte {
	b := []byte{pcpVersion, pcpOpMap | pcpReplyBit, 0, code}
	b = binary.BigEndian.AppendUint32(b, lifetime)
	b = binary.BigEndian.AppendUint32(b, 7) // epoch
	b = append(b, make([]byte, 12)...)
	b = append(b, r.nonce[:]...)
	b = append(b, r.proto, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, r.internal)
	b = binary.BigEndian.AppendUint16(b, ext.Port())
	a := ext.Addr().As16()
	return append(b, a[:]...)
}

func TestPCPMap(t *testing.T) {
	r := pcpMapRequest{nonce: newPCPNonce(), proto: protoUDP, internal: 40000, lifetime: time.Minute, client: netip.MustParseAddr("10.1.0.2")}
	req := appendPCPMap(nil, r)
	if len(req) != pcpHeaderLen+pcpMapDataLen || req[0] != 2 || req[1] != 1 || binary.BigEndian.Uint32(req[4:8]) != 60 {
		t.Fatalf("request % x", req)
	}
	if got := netip.AddrFrom16([16]byte(req[8:24])); got.Unmap() != r.client || !got.Is4In6() {
		t.Errorf("client address %v", got)
	}
	if got := netip.AddrFrom16([16]byte(req[pcpHeaderLen+20:])); got != netip.MustParseAddr("::ffff:0.0.0.0") {
		t.Errorf("suggested external address %v, want ::ffff:0.0.0.0 (no preference)", got)
	}
	ext := netip.MustParseAddrPort("198.18.1.2:40001")
	m, err := parsePCPMap(pcpMapResponse(r, 0, ext, 60), r)
	if err != nil || m.external != ext || m.lifetime != time.Minute || m.epoch != 7 {
		t.Errorf("parse = %+v, %v", m, err)
	}
	other := r
	other.nonce[0] ^= 1
	if _, err := parsePCPMap(pcpMapResponse(other, 0, ext, 60), r); !errors.Is(err, errMalformed) {
		t.Errorf("another mapping's nonce: %v", err)
	}
	var re *ResultError
	if _, err := parsePCPMap(pcpMapResponse(r, 8, ext, 0), r); !errors.As(err, &re) || re.Code != 8 {
		t.Errorf("refusal: %v", err)
	}
	// A NAT-PMP-only server's answer to a PCP request is not PCP.
	if _, err := parsePCPAnnounce([]byte{0, 128, 0, 1}); !errors.Is(err, errMalformed) {
		t.Errorf("NAT-PMP answer: %v", err)
	}
	if _, err := parsePCPAnnounce(appendPCPAnnounce(nil, r.client)); !errors.Is(err, errMalformed) {
		t.Errorf("a request parsed as a response: %v", err)
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]uint32{0: 0, -time.Second: 0, time.Nanosecond: 1, time.Second: 1, 1500 * time.Millisecond: 2} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func FuzzParsePMP(f *testing.F) {
	f.Add([]byte{0, 128, 0, 0, 0, 0, 0, 9, 198, 18, 1, 2})
	f.Add([]byte{0, 129, 0, 0, 0, 0, 0, 9, 0x9c, 0x40, 0x9c, 0x41, 0, 0, 0, 60})
	f.Add([]byte{0, 129, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parsePMPExternal(b)
		if err == nil && !a.Is4() {
			t.Errorf("accepted a non-IPv4 external address %v", a)
		}
		m, err := parsePMPMap(b, pmpOpMapUDP, 40000)
		if err == nil && m.internal != 40000 {
			t.Errorf("accepted a mapping of port %d", m.internal)
		}
	})
}

func FuzzParsePCP(f *testing.F) {
	r := pcpMapRequest{nonce: pcpNonce{1, 2, 3}, proto: protoUDP, internal: 40000, lifetime: time.Minute}
	f.Add(pcpMapResponse(r, 0, netip.MustParseAddrPort("198.18.1.2:40001"), 60))
	f.Add(pcpMapResponse(r, 8, netip.MustParseAddrPort("0.0.0.0:0"), 0))
	f.Add([]byte{2, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 128, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parsePCPAnnounce(b)
		m, err := parsePCPMap(b, r)
		if err == nil && !bytes.Equal(b[pcpHeaderLen:pcpHeaderLen+pcpNonceLen], r.nonce[:]) {
			t.Errorf("accepted another mapping's nonce: %+v", m)
		}
	})
}
