package transport

import (
	"testing"
)

func TestSegmentSizeFromQUICGoControlMessage(t *testing.T) {
	var oob [32]byte
	n := putSegmentSizeCmsg(oob[:], 1252)
	if got := segmentSize(oob[:n]); got != 1252 {
		t.Fatalf("segmentSize = %d, want 1252", got)
	}
	if got := segmentSize(nil); got != 0 {
		t.Fatalf("segmentSize(nil) = %d", got)
	}
}

func TestSplitSegments(t *testing.T) {
	var sizes []int
	b := make([]byte, 1000)
	if err := splitSegments(b, 300, func(d []byte) error { sizes = append(sizes, len(d)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 4 || sizes[0] != 300 || sizes[3] != 100 {
		t.Fatalf("segments %v, want 300,300,300,100", sizes)
	}
}

func FuzzSegmentSize(f *testing.F) {
	var oob [32]byte
	n := putSegmentSizeCmsg(oob[:], 1200)
	f.Add(oob[:n])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got := segmentSize(b); got < 0 || got > 0xffff {
			t.Fatalf("segment size %d out of range", got)
		}
	})
}
