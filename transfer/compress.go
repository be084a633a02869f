package transfer

import (
	"fmt"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Adaptive compression, on two levels. Per chunk: every chunk is offered
// to zstd at its fastest level and sent compressed only if that saves at
// least 1/16 of it. Once a file's chunks stop shrinking (media, archives,
// random data), only every probeEvery-th chunk of it is tried, and that
// one first by a sample of probeSample bytes, so incompressible data costs
// almost nothing while text still compresses. Per transfer: the
// compression gate (compress_gate.go) turns compression off altogether
// where sending the bytes as they are is faster.
const (
	minSavingsDiv = 16 // a chunk must shrink by at least len/16
	probeEvery    = 16
	// skipAfter is how many incompressible chunks in a row start skipping.
	skipAfter = 2
	// probeSample is how much of a probed chunk is tried first.
	probeSample = 64 << 10
)

// fileCompressibility tracks, per file, the run of chunks that did not shrink.
type fileCompressibility struct {
	misses []atomic.Int32
}

func newFileCompressibility(files int) *fileCompressibility {
	return &fileCompressibility{misses: make([]atomic.Int32, files)}
}

// compressor is one sending worker's zstd encoder and scratch buffer.
type compressor struct {
	enc   *zstd.Encoder
	buf   []byte
	stats *fileCompressibility
	gate  *compressGate // nil: always try
}

func newCompressor(stats *fileCompressibility, gate *compressGate) (*compressor, error) {
	// No frame checksum: every chunk is verified against its BLAKE3 hash
	// after decompression anyway, and skipping it saves about a tenth.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, fmt.Errorf("transfer: zstd encoder: %w", err)
	}
	return &compressor{enc: enc, stats: stats, gate: gate}, nil
}

// compress returns the payload for chunk idx of file and whether it is
// compressed. The returned slice is valid until the next call.
func (c *compressor) compress(file, idx int, raw []byte) ([]byte, bool) {
	if !c.gate.compressing() && !isZero(raw) {
		// A chunk of zeros (disk images) costs zstd next to nothing and
		// shrinks to a few bytes: it is compressed whatever the gate says.
		return raw, false
	}
	miss := &c.stats.misses[file]
	if m := miss.Load(); m >= skipAfter {
		if idx%probeEvery != 0 {
			return raw, false
		}
		if len(raw) > 2*probeSample {
			// A file that has not compressed so far: try a sample first.
			sample := raw[:probeSample]
			c.buf = c.enc.EncodeAll(sample, c.buf[:0])
			if len(c.buf) > len(sample)-len(sample)/minSavingsDiv {
				return raw, false
			}
		}
	}
	c.buf = c.enc.EncodeAll(raw, c.buf[:0])
	if len(c.buf) > len(raw)-len(raw)/minSavingsDiv {
		miss.Add(1)
		return raw, false
	}
	miss.Store(0)
	return c.buf, true
}

func (c *compressor) close() { _ = c.enc.Close() }

// decompressor is one receiving stream's zstd decoder.
type decompressor struct {
	dec *zstd.Decoder
}

func newDecompressor(maxChunk int64) (*decompressor, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxChunk)*2), zstd.WithDecoderMaxWindow(uint64(max(maxChunk, 1<<20))))
	if err != nil {
		return nil, fmt.Errorf("transfer: zstd decoder: %w", err)
	}
	return &decompressor{dec: dec}, nil
}

// decompress expands payload into dst (capacity at least rawLen) and checks
// it is exactly rawLen bytes.
func (d *decompressor) decompress(dst, payload []byte, rawLen int) ([]byte, error) {
	out, err := d.dec.DecodeAll(payload, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("transfer: corrupt compressed chunk: %w", err)
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("transfer: compressed chunk expands to %d bytes, want %d", len(out), rawLen)
	}
	return out, nil
}

func (d *decompressor) close() { d.dec.Close() }
