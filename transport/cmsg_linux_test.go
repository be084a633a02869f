package transport

import (
	"testing"

	"golang.org/x/sys/unix"
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

// TestCmsgLayoutMatchesKernelHelpers cross-checks the hand-written header
// layout against x/sys's own control-message builder.
func TestCmsgLayoutMatchesKernelHelpers(t *testing.T) {
	b := unix.UnixRights(7)
	l, level, typ, ok := parseCmsgHeader(b)
	if !ok || l != unix.CmsgLen(4) || level != unix.SOL_SOCKET || typ != unix.SCM_RIGHTS {
		t.Fatalf("parsed (%d, %d, %d, %v), want (%d, SOL_SOCKET, SCM_RIGHTS, true)", l, level, typ, ok, unix.CmsgLen(4))
	}
	if cmsgAlign(cmsgHdrLen+2) != unix.CmsgSpace(2) {
		t.Fatalf("cmsgAlign = %d, CmsgSpace = %d", cmsgAlign(cmsgHdrLen+2), unix.CmsgSpace(2))
	}
	// A segment-size message after another message is still found.
	var seg [32]byte
	n := putSegmentSizeCmsg(seg[:], 1200)
	if got := segmentSize(append(b, seg[:n]...)); got != 1200 {
		t.Fatalf("segmentSize after SCM_RIGHTS = %d, want 1200", got)
	}
}
