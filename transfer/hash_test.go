package transfer

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/zeebo/blake3"
)

// BenchmarkHash compares the two candidate chunk hashes at typical chunk
// sizes. Run it single-threaded:
//
//	go test -run '^$' -bench BenchmarkHash -cpu 1 ./transfer/
func BenchmarkHash(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20, 4 << 20} {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(i*131 + i>>8)
		}
		name := fmt.Sprintf("%dKiB", size>>10)
		if size >= 1<<20 {
			name = fmt.Sprintf("%dMiB", size>>20)
		}
		b.Run("sha256/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				sha256.Sum256(buf)
			}
		})
		b.Run("blake3/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				blake3.Sum256(buf)
			}
		})
	}
}

func TestHashChunk(t *testing.T) {
	// BLAKE3 test vector: the empty input.
	const empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	if got := HashChunk(nil).String(); got != empty {
		t.Fatalf("HashChunk(nil) = %s, want %s", got, empty)
	}
	data := []byte("hello, ferry")
	h := newHasher()
	h.Write(data[:5])
	h.Write(data[5:])
	var streamed Hash
	copy(streamed[:], h.Sum(nil))
	if streamed != HashChunk(data) {
		t.Fatal("streaming hasher disagrees with HashChunk")
	}
}

func TestHashJSON(t *testing.T) {
	h := HashChunk([]byte("x"))
	b, err := json.Marshal([]Hash{h})
	if err != nil {
		t.Fatal(err)
	}
	if want := `["` + h.String() + `"]`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var back []Hash
	if err := json.Unmarshal(b, &back); err != nil || len(back) != 1 || back[0] != h {
		t.Fatalf("round trip: %v %v", back, err)
	}
	for _, bad := range []string{`["00"]`, `["` + h.String() + `0"]`, `["zz` + h.String()[2:] + `"]`, `[1]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
