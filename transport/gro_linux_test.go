package transport

import (
	"encoding/binary"
	"math"
	"testing"

	"golang.org/x/sys/unix"
)

// putGROCmsg writes a UDP_GRO control message holding size, as the kernel
// builds it, into b and returns its length.
func putGROCmsg(b []byte, size int32) int {
	n := cmsgAlign(cmsgHdrLen + 4)
	clear(b[:n])
	putCmsgHeader(b, cmsgHdrLen+4, unix.IPPROTO_UDP, unix.UDP_GRO)
	binary.NativeEndian.PutUint32(b[cmsgHdrLen:], uint32(size))
	return n
}

func TestGROSegmentSize(t *testing.T) {
	var gro, seg [32]byte
	n := putGROCmsg(gro[:], 1200)
	if n != unix.CmsgSpace(4) {
		t.Fatalf("UDP_GRO message takes %d bytes, CmsgSpace(4) = %d", n, unix.CmsgSpace(4))
	}
	m := putSegmentSizeCmsg(seg[:], 1200)
	neg := make([]byte, n)
	putGROCmsg(neg, -5)
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"gro", gro[:n], 1200},
		{"unpadded", gro[:cmsgHdrLen+4], 1200},
		{"after other", append(unix.UnixRights(7), gro[:n]...), 1200},
		{"after segment", append(append([]byte(nil), seg[:m]...), gro[:n]...), 1200},
		{"none", nil, 0},
		{"segment only", seg[:m], 0},
		{"short payload", gro[:cmsgHdrLen+3], 0},
		{"short header", gro[:cmsgHdrLen-1], 0},
		{"negative", neg, 0},
	} {
		if got := groSegmentSize(tc.oob); got != tc.want {
			t.Errorf("%s: groSegmentSize = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func FuzzGROSegmentSize(f *testing.F) {
	var oob [32]byte
	n := putGROCmsg(oob[:], 1200)
	f.Add(oob[:n])
	f.Add(append(unix.UnixRights(3), oob[:n]...))
	f.Add(oob[:cmsgHdrLen+2])
	putGROCmsg(oob[:], -1)
	f.Add(oob[:n])
	m := putSegmentSizeCmsg(oob[:], 1200)
	f.Add(oob[:m])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got := groSegmentSize(b); got < 0 || got > math.MaxInt32 {
			t.Fatalf("segment size %d out of range", got)
		}
	})
}
