package transport

import "testing"

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
