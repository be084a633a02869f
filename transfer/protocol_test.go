package transfer

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestControlFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := writeControlJSON(&buf, frameNeed, needMsg{Need: map[int][]int{2: {0, 5}}}); err != nil {
		t.Fatal(err)
	}
	if err := writeControl(&buf, frameSent, nil); err != nil {
		t.Fatal(err)
	}
	f, err := readControl(&buf)
	if err != nil || f.typ != frameNeed {
		t.Fatalf("first frame: %v, type %d", err, f.typ)
	}
	var n needMsg
	if err := json.Unmarshal(f.payload, &n); err != nil || len(n.Need[2]) != 2 || n.Need[2][1] != 5 {
		t.Fatalf("need payload %s: %v", f.payload, err)
	}
	if f, err := readControl(&buf); err != nil || f.typ != frameSent || len(f.payload) != 0 {
		t.Fatalf("second frame: %v, type %d, %d bytes", err, f.typ, len(f.payload))
	}
	if _, err := readControl(&buf); err == nil {
		t.Error("reading past the last frame succeeded")
	}

	// Unknown types and oversized lengths fail before any allocation.
	for _, hdr := range [][]byte{
		{0, 0, 0, 0, 0},
		{frameLast + 1, 0, 0, 0, 0},
		{frameHello, 0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := readControl(bytes.NewReader(hdr)); err == nil {
			t.Errorf("header % x accepted", hdr)
		}
	}
}

func TestChunkHeaderValidate(t *testing.T) {
	m := &Manifest{ChunkSize: MinChunkSize, Files: []FileEntry{
		{Path: "d", Dir: true},
		{Path: "d/a", Size: MinChunkSize + 10, Chunks: make([]Hash, 2)},
	}}
	good := chunkHeader{file: 1, chunk: 1, rawLen: 10, payloadLen: 10}
	if err := good.validate(m); err != nil {
		t.Fatalf("a valid header was refused: %v", err)
	}
	packed := chunkHeader{file: 1, chunk: 0, flags: flagZstd, rawLen: MinChunkSize, payloadLen: 100}
	if err := packed.validate(m); err != nil {
		t.Fatalf("a valid compressed header was refused: %v", err)
	}
	for name, h := range map[string]chunkHeader{
		"directory":               {file: 0, chunk: 0},
		"unknown file":            {file: 2, chunk: 0, rawLen: 10, payloadLen: 10},
		"chunk past the end":      {file: 1, chunk: 2, rawLen: 10, payloadLen: 10},
		"wrong raw length":        {file: 1, chunk: 1, rawLen: 11, payloadLen: 11},
		"unknown flags":           {file: 1, chunk: 1, flags: 2, rawLen: 10, payloadLen: 10},
		"raw payload too short":   {file: 1, chunk: 1, rawLen: 10, payloadLen: 9},
		"payload larger than raw": {file: 1, chunk: 1, flags: flagZstd, rawLen: 10, payloadLen: 11},
	} {
		if err := h.validate(m); err == nil {
			t.Errorf("%s: header %+v accepted", name, h)
		}
	}
	var b [chunkHeaderLen]byte
	good.put(b[:])
	if parseChunkHeader(b[:]) != good {
		t.Error("chunk header does not round-trip")
	}
}

// FuzzReadControl reads arbitrary bytes as a peer's control stream, and
// decodes each frame the way the sender and receiver do: nothing may panic
// or allocate past the frame limit.
func FuzzReadControl(f *testing.F) {
	var seed bytes.Buffer
	writeControlJSON(&seed, frameAccept, acceptMsg{Have: map[int][]byte{0: {0xff, 1}}})
	writeControlJSON(&seed, frameNeed, needMsg{Need: map[int][]int{1: {3}}})
	writeControlJSON(&seed, frameError, errorMsg{Kind: KindDiskFull, Message: "full"})
	writeControl(&seed, frameDone, nil)
	f.Add(seed.Bytes())
	f.Add([]byte{frameHello, 0, 0, 0, 2, protocolVersion, '{'})
	f.Add([]byte{frameDecline, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			fr, err := readControl(r)
			if err != nil {
				return
			}
			if fr.typ < frameHello || fr.typ > frameLast || len(fr.payload) > maxControlPayload {
				t.Fatalf("frame type %d with %d bytes accepted", fr.typ, len(fr.payload))
			}
			switch fr.typ {
			case frameAccept:
				var a acceptMsg
				if json.Unmarshal(fr.payload, &a) == nil {
					// The sender asks about chunk indices 0..n-1 of a file
					// whatever the bitmap's length: past its end is "no".
					for _, have := range a.Have {
						for c := range 8*len(have) + 9 {
							if bitmapHas(have, c) && c >= 8*len(have) {
								t.Fatalf("chunk %d reported held by a %d-byte bitmap", c, len(have))
							}
						}
					}
				}
			case frameNeed:
				var n needMsg
				_ = json.Unmarshal(fr.payload, &n)
			case frameError:
				_ = peerError(fr.payload)
			case frameDecline:
				var d declineMsg
				if json.Unmarshal(fr.payload, &d) == nil {
					_ = cleanPeerText(d.Reason)
				}
			}
		}
	})
}

// FuzzChunkHeader checks the header check against a small manifest: a
// header it lets through always names a real chunk with a sane payload.
func FuzzChunkHeader(f *testing.F) {
	m := &Manifest{ChunkSize: MinChunkSize, Files: []FileEntry{
		{Path: "d", Dir: true},
		{Path: "d/a", Size: 2*MinChunkSize + 10, Chunks: make([]Hash, 3)},
		{Path: "e", Size: 0},
	}}
	var b [chunkHeaderLen]byte
	chunkHeader{file: 1, chunk: 2, rawLen: 10, payloadLen: 10}.put(b[:])
	f.Add(b[:])
	chunkHeader{file: 1, chunk: 0, flags: flagZstd, rawLen: MinChunkSize, payloadLen: 7}.put(b[:])
	f.Add(b[:])
	f.Add(make([]byte, chunkHeaderLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < chunkHeaderLen {
			return
		}
		h := parseChunkHeader(data)
		if h.validate(m) != nil {
			return
		}
		fe := &m.Files[h.file]
		if fe.Dir || int(h.chunk) >= fe.ChunkCount(m.ChunkSize) || int64(h.rawLen) > m.ChunkSize || h.payloadLen > h.rawLen {
			t.Fatalf("header %+v accepted for %+v", h, fe)
		}
		var back [chunkHeaderLen]byte
		h.put(back[:])
		if !bytes.Equal(back[:], data[:chunkHeaderLen]) {
			t.Fatalf("header % x does not round-trip", data[:chunkHeaderLen])
		}
	})
}
