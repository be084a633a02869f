package transfer

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// wordSalad returns n bytes of text from a small vocabulary.
func wordSalad(n int) []byte {
	words := []string{"ferry ", "carries ", "files ", "across ", "the ", "water ", "quickly.\n", "resumable ", "chunks ", "verified "}
	var seed uint32 = 7
	buf := make([]byte, 0, n+16)
	for len(buf) < n {
		seed = seed*1664525 + 1013904223
		buf = append(buf, words[seed>>28%uint32(len(words))]...)
	}
	return buf[:n]
}

func TestCompressRoundTrip(t *testing.T) {
	stats := newFileCompressibility(2)
	c, err := newCompressor(stats, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	d, err := newDecompressor(DefaultChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	text := wordSalad(DefaultChunkSize)
	payload, packed := c.compress(0, 0, text)
	if !packed || len(payload) >= len(text)/2 {
		t.Fatalf("text chunk: compressed=%v, %d of %d bytes", packed, len(payload), len(text))
	}
	out, err := d.decompress(make([]byte, 0, len(text)), payload, len(text))
	if err != nil || !bytes.Equal(out, text) {
		t.Fatalf("text chunk does not round-trip: err %v, equal %v", err, bytes.Equal(out, text))
	}
	if _, err := d.decompress(make([]byte, 0, len(text)), payload, len(text)-1); err == nil {
		t.Error("a chunk expanding to the wrong length was accepted")
	}

	// Random data is sent raw; after skipAfter misses in a row only every
	// probeEvery-th chunk of that file is offered to zstd again.
	random := make([]byte, DefaultChunkSize)
	rand.Read(random)
	for idx := range skipAfter {
		if p, packed := c.compress(1, idx+1, random); packed || !bytes.Equal(p, random) {
			t.Fatalf("random chunk %d: compressed=%v, payload not the raw chunk", idx+1, packed)
		}
	}
	if got := stats.misses[1].Load(); got != skipAfter {
		t.Fatalf("misses after %d random chunks = %d", skipAfter, got)
	}
	// A text chunk in the same file is not tried (not a probe index)...
	if _, packed := c.compress(1, probeEvery+1, text); packed {
		t.Error("a chunk of a file known to be incompressible was compressed off a probe index")
	}
	// On a probe index the chunk's first probeSample bytes are tried
	// first: random there means the chunk is sent raw untried...
	mixed := append(append([]byte(nil), random[:probeSample]...), text[probeSample:]...)
	if _, packed := c.compress(1, probeEvery, mixed); packed {
		t.Error("a probed chunk whose sample does not compress was compressed")
	}
	// ...and text there means the chunk is compressed, which resets the run.
	if _, packed := c.compress(1, probeEvery, text); !packed {
		t.Error("a compressible chunk on a probe index was sent raw")
	}
	if got := stats.misses[1].Load(); got != 0 {
		t.Errorf("misses after a compressible probe = %d, want 0", got)
	}
	// The other file's run is its own.
	if got := stats.misses[0].Load(); got != 0 {
		t.Errorf("file 0 misses = %d, want 0", got)
	}
}

// FuzzDecompress feeds arbitrary peer payloads to the chunk decompressor:
// it must fail cleanly, never panic, and never return other than rawLen
// bytes.
func FuzzDecompress(f *testing.F) {
	c, err := newCompressor(newFileCompressibility(1), nil)
	if err != nil {
		f.Fatal(err)
	}
	text := wordSalad(64 << 10)
	good, _ := c.compress(0, 0, text)
	f.Add(append([]byte(nil), good...), len(text))
	f.Add(append([]byte(nil), good[:len(good)/2]...), len(text))
	zeros, _ := c.compress(0, 0, make([]byte, DefaultChunkSize))
	f.Add(append([]byte(nil), zeros...), 10)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, 100)
	f.Add([]byte{}, 0)
	c.close()

	const maxChunk = 256 << 10
	d, err := newDecompressor(maxChunk)
	if err != nil {
		f.Fatal(err)
	}
	defer d.close()
	f.Fuzz(func(t *testing.T, payload []byte, rawLen int) {
		if rawLen < 0 || rawLen > maxChunk {
			return // the receiver rejects such lengths before decompressing
		}
		out, err := d.decompress(make([]byte, 0, rawLen), payload, rawLen)
		if err == nil && len(out) != rawLen {
			t.Fatalf("decompress returned %d bytes without error, want %d", len(out), rawLen)
		}
	})
}

// BenchmarkCompress is zstd's per-chunk cost on one core, for the CPU
// budget in docs/BENCHMARKS.md: go test -run '^$' -bench Compress -cpu 1 ./transfer/
func BenchmarkCompress(b *testing.B) {
	random := make([]byte, DefaultChunkSize)
	rand.Read(random)
	for _, tc := range []struct {
		name string
		data []byte
	}{{"word-salad", wordSalad(DefaultChunkSize)}, {"random", random}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := newCompressor(newFileCompressibility(1), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			b.SetBytes(int64(len(tc.data)))
			for b.Loop() {
				c.compress(0, 0, tc.data) // index 0 is always a probe
			}
		})
		b.Run(tc.name+"/decompress", func(b *testing.B) {
			c, _ := newCompressor(newFileCompressibility(1), nil)
			payload, packed := c.compress(0, 0, tc.data)
			payload = append([]byte(nil), payload...)
			c.close()
			if !packed {
				b.Skip("sent raw: nothing to decompress")
			}
			d, err := newDecompressor(DefaultChunkSize)
			if err != nil {
				b.Fatal(err)
			}
			defer d.close()
			dst := make([]byte, 0, len(tc.data))
			b.SetBytes(int64(len(tc.data)))
			for b.Loop() {
				if _, err := d.decompress(dst, payload, len(tc.data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
