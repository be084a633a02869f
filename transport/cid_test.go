package transport

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestCIDGeneratorCarriesTag(t *testing.T) {
	g := &cidGenerator{tag: 0xdeadbeef}
	seen := map[string]bool{}
	for range 100 {
		id, err := g.GenerateConnectionID()
		if err != nil {
			t.Fatal(err)
		}
		if id.Len() != cidLen || g.ConnectionIDLen() != cidLen {
			t.Fatalf("length %d, want %d", id.Len(), cidLen)
		}
		b := id.Bytes()
		if routerTag(binary.BigEndian.Uint32(b[:4])) != g.tag {
			t.Fatalf("CID %x does not start with the tag", b)
		}
		if seen[string(b)] {
			t.Fatalf("duplicate CID %x", b)
		}
		seen[string(b)] = true
	}
}

func TestParseQUICRoute(t *testing.T) {
	short := []byte{0x40, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 0xff}
	if r, ok := parseQUICRoute(short); !ok || r.tag != 0xdeadbeef || r.initial {
		t.Fatalf("short header: %+v %v", r, ok)
	}
	if _, ok := parseQUICRoute(short[:8]); ok {
		t.Fatal("truncated short header accepted")
	}
	// Long header v1 Initial with an 8-byte DCID.
	initial := []byte{0xc0, 0, 0, 0, 1, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 0}
	if r, ok := parseQUICRoute(initial); !ok || !r.initial || r.tag != 0xdeadbeef {
		t.Fatalf("initial: %+v %v", r, ok)
	}
	// Long header v1 Handshake (type 2) with a 12-byte DCID: no tag.
	hs := append([]byte{0xe0, 0, 0, 0, 1, 12}, make([]byte, 13)...)
	if r, ok := parseQUICRoute(hs); !ok || r.initial || r.tag != 0 {
		t.Fatalf("handshake: %+v %v", r, ok)
	}
	// DCID length beyond the packet or above 20.
	if _, ok := parseQUICRoute([]byte{0xc0, 0, 0, 0, 1, 21}); ok {
		t.Fatal("DCID length 21 accepted")
	}
	if _, ok := parseQUICRoute([]byte{0xc0, 0, 0, 0, 1, 8, 1}); ok {
		t.Fatal("DCID past the end accepted")
	}
}

func FuzzParseQUICRoute(f *testing.F) {
	f.Add([]byte{0x40, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4})
	f.Add([]byte{0xc0, 0, 0, 0, 1, 8, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := parseQUICRoute(b)
		if !ok {
			return
		}
		if b[0]&0x40 == 0 {
			t.Fatal("route from a packet without the fixed bit")
		}
		if r.initial && b[0]&0x80 == 0 {
			t.Fatal("short header reported as Initial")
		}
	})
}

func FuzzCIDIssued(f *testing.F) {
	g := &cidGenerator{tag: 0xdeadbeef}
	var ids [][]byte
	for range 3 {
		id, err := g.GenerateConnectionID()
		if err != nil {
			f.Fatal(err)
		}
		ids = append(ids, id.Bytes())
	}
	f.Add(append([]byte{0x40}, ids[0]...))
	f.Add(append([]byte{0xc0, 0, 0, 0, 1, 8}, ids[1]...))
	f.Add([]byte{0x40, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !g.issued(b) {
			return
		}
		// Whatever the bytes, an ID reported as issued is one of ours,
		// at the place its header form puts it.
		at := 1
		if b[0]&0x80 != 0 {
			at = 6
		}
		for _, id := range ids {
			if bytes.Equal(b[at:at+cidLen], id) {
				return
			}
		}
		t.Fatalf("issued(%x): its ID %x was never issued", b, b[at:at+cidLen])
	})
}

func TestCIDGeneratorKnowsWhatItIssued(t *testing.T) {
	g := &cidGenerator{tag: 0xdeadbeef}
	short := func(id []byte) []byte { return append([]byte{0x40}, append(id, make([]byte, 20)...)...) }
	long := func(id []byte) []byte {
		p := []byte{0xc0, 0, 0, 0, 1, byte(len(id))}
		return append(append(p, id...), make([]byte, 20)...)
	}
	var ids [][]byte
	for range cidRecent + 8 {
		id, err := g.GenerateConnectionID()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.Bytes())
	}
	for i, id := range ids {
		want := i >= 8 // the oldest eight fell out of the record
		if g.issued(short(id)) != want || g.issued(long(id)) != want {
			t.Errorf("ID %d of %d (%x): issued = %v (short), %v (long), want %v", i+1, len(ids), id, g.issued(short(id)), g.issued(long(id)), want)
		}
	}
	newest := ids[len(ids)-1]
	otherTag := append([]byte{1, 2, 3, 4}, newest[4:]...)
	otherRandom := append(append([]byte{}, newest[:4]...), ^newest[4], newest[5], newest[6], newest[7])
	for name, p := range map[string][]byte{
		"empty":              {},
		"truncated short":    short(newest)[:cidLen],
		"truncated long":     long(newest)[:5+cidLen],
		"another tag":        short(otherTag),
		"an ID never issued": short(otherRandom),
		"long, 4-byte ID":    long(newest[:4]),
	} {
		if g.issued(p) {
			t.Errorf("%s: issued = true, want false", name)
		}
	}
	if (&cidGenerator{tag: 1}).issued(short([]byte{0, 0, 0, 1, 0, 0, 0, 0})) {
		t.Error("a generator that issued nothing reports an ID as issued")
	}
}
