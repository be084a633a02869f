package transport

import (
	"bytes"
	"testing"
)

// TestStashKeepsNewestPackets: while on, the stash keeps the newest
// stashLen packets (of a GSO batch, its last segment), hands them out
// oldest first once, and keeps nothing while off.
func TestStashKeepsNewestPackets(t *testing.T) {
	var st stash
	st.keep([]byte("ignored while off"), 0)
	if got := st.take(); got != nil {
		t.Fatalf("took %q from a stash that was off", got)
	}
	st.on.Store(true)
	st.keep([]byte("p1"), 0)
	st.keep([]byte("p2"), 0)
	st.keep([]byte("aaaabbbbcc"), 4) // a GSO batch: its last segment is "cc"
	got := st.take()
	if len(got) != 2 || !bytes.Equal(got[0], []byte("p2")) || !bytes.Equal(got[1], []byte("cc")) {
		t.Fatalf("took %q, want [p2 cc]", got)
	}
	if st.on.Load() {
		t.Fatal("stash still on after take")
	}
	st.keep([]byte("late"), 0)
	if got := st.take(); got != nil {
		t.Fatalf("took %q after the stash was emptied", got)
	}
}
