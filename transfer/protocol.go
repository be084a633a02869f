package transfer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// The transfer protocol runs over one QUIC connection between two paired
// peers.
//
// Control stream: the first bidirectional stream, opened by the sender.
// Both directions carry control frames:
//
//	type (1) | length (4, big-endian) | payload (length bytes, at most maxControlPayload)
//
//	HELLO   S->R  version (1) | manifest (JSON, see manifest.go)
//	              or version (2) | JSON textOffer (text.go)
//	ACCEPT  R->S  JSON acceptMsg: which chunks the receiver already holds
//	DECLINE R->S  JSON {"reason": "..."}
//	NEED    R->S  JSON needMsg: chunks to send (again)
//	SENT    S->R  empty: everything asked for so far has been written
//	DONE    R->S  empty: every file is verified and in place (or the text shown)
//	ERROR   both  JSON errorMsg: the side stops; kind says why
//	TEXT    S->R  the offered text, after ACCEPT (version 2 only)
//
// HELLO's version byte says what the offer is. A file offer still carries
// version 1, as from the first release, so older receivers take files from
// a newer sender; a text offer carries version 2, which an older receiver
// refuses with an ERROR naming both versions instead of misreading it.
//
// Data streams: further bidirectional streams opened by the sender, written
// only by the sender (the receiver closes its direction at once). Each is a
// sequence of chunk frames:
//
//	file (4) | chunk (4) | flags (1) | raw length (4) | payload length (4) | payload
//
// flags bit 0: the payload is one zstd frame that decompresses to exactly
// raw length bytes; otherwise payload is the raw chunk. The receiver hashes
// every chunk after decompression and compares with the manifest.
const (
	frameHello   byte = 1
	frameAccept  byte = 2
	frameDecline byte = 3
	frameNeed    byte = 4
	frameSent    byte = 5
	frameDone    byte = 6
	frameError   byte = 7
	frameText    byte = 8

	// frameLast is the highest control frame type.
	frameLast = frameText

	// protocolVersion is the HELLO version of a file offer.
	protocolVersion = 1
	// protocolText is the HELLO version of a text offer (text.go).
	protocolText = 2

	// maxControlPayload bounds a control frame (the manifest is the largest).
	maxControlPayload = 64 << 20

	// controlHeaderLen is a control frame's type and length fields.
	controlHeaderLen = 5

	chunkHeaderLen = 17
	flagZstd       = 1
)

// controlFrame is one decoded control frame.
type controlFrame struct {
	typ     byte
	payload []byte
}

func writeControl(w io.Writer, typ byte, payload []byte) error {
	var hdr [controlHeaderLen]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(append(hdr[:], payload...)); err != nil {
		return err
	}
	return nil
}

func writeControlJSON(w io.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeControl(w, typ, b)
}

// readControl reads one control frame, refusing unknown types and oversized
// payloads before allocating them.
func readControl(r io.Reader) (controlFrame, error) {
	return readControlLimit(r, maxControlPayload)
}

// frameTooLargeError is readControlLimit's error for a frame longer than
// its limit.
type frameTooLargeError struct{ n, limit uint32 }

func (e *frameTooLargeError) Error() string {
	return fmt.Sprintf("transfer: control frame of %d bytes exceeds the %d limit", e.n, e.limit)
}

// readControlLimit is readControl with a smaller payload limit.
func readControlLimit(r io.Reader, limit uint32) (controlFrame, error) {
	var hdr [controlHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return controlFrame{}, err
	}
	typ, n := hdr[0], binary.BigEndian.Uint32(hdr[1:])
	if typ < frameHello || typ > frameLast {
		return controlFrame{}, fmt.Errorf("transfer: unknown control frame type %d", typ)
	}
	if n > limit {
		return controlFrame{}, &frameTooLargeError{n, limit}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return controlFrame{}, err
	}
	return controlFrame{typ: typ, payload: payload}, nil
}

// countingWriter adds every byte written through it to n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	k, err := c.w.Write(b)
	c.n.Add(int64(k))
	return k, err
}

// acceptMsg tells the sender what the receiver already holds: per file
// index, a bitmap of verified chunks (bit i of byte i/8, LSB first). Files
// without an entry have nothing.
type acceptMsg struct {
	Have map[int][]byte `json:"have,omitempty"`
}

// needMsg asks for chunks: per file index, chunk indices.
type needMsg struct {
	Need map[int][]int `json:"need"`
}

type declineMsg struct {
	Reason string `json:"reason"`
}

type errorMsg struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
}

// chunkHeader precedes every chunk on a data stream.
type chunkHeader struct {
	file, chunk uint32
	flags       byte
	rawLen      uint32
	payloadLen  uint32
}

func (h chunkHeader) put(b []byte) {
	binary.BigEndian.PutUint32(b[0:], h.file)
	binary.BigEndian.PutUint32(b[4:], h.chunk)
	b[8] = h.flags
	binary.BigEndian.PutUint32(b[9:], h.rawLen)
	binary.BigEndian.PutUint32(b[13:], h.payloadLen)
}

func parseChunkHeader(b []byte) chunkHeader {
	return chunkHeader{
		file:       binary.BigEndian.Uint32(b[0:]),
		chunk:      binary.BigEndian.Uint32(b[4:]),
		flags:      b[8],
		rawLen:     binary.BigEndian.Uint32(b[9:]),
		payloadLen: binary.BigEndian.Uint32(b[13:]),
	}
}

// validate checks a chunk header against the manifest before any payload
// is read: known file and chunk, the exact raw length, a payload no larger
// than the raw chunk (ferry only compresses when it saves), known flags.
func (h chunkHeader) validate(m *Manifest) error {
	if int(h.file) >= len(m.Files) || m.Files[h.file].Dir {
		return fmt.Errorf("transfer: chunk for unknown file %d", h.file)
	}
	f := &m.Files[h.file]
	if int(h.chunk) >= f.ChunkCount(m.ChunkSize) {
		return fmt.Errorf("transfer: chunk %d beyond the end of %q", h.chunk, f.Path)
	}
	if int(h.rawLen) != f.ChunkLen(int(h.chunk), m.ChunkSize) {
		return fmt.Errorf("transfer: chunk %d of %q has length %d, want %d", h.chunk, f.Path, h.rawLen, f.ChunkLen(int(h.chunk), m.ChunkSize))
	}
	if h.flags&^flagZstd != 0 {
		return fmt.Errorf("transfer: unknown chunk flags 0x%x", h.flags)
	}
	if h.payloadLen > h.rawLen || (h.flags&flagZstd == 0 && h.payloadLen != h.rawLen) {
		return fmt.Errorf("transfer: chunk %d of %q has a %d-byte payload for %d bytes", h.chunk, f.Path, h.payloadLen, h.rawLen)
	}
	return nil
}

// cancelWithContext cancels both directions of st when ctx ends (a dead
// peer, the user's Ctrl-C): QUIC stream reads and writes do not watch a
// context. Call the returned function when done with st.
func cancelWithContext(ctx context.Context, st *quic.Stream) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		st.CancelRead(codeCanceled)
		st.CancelWrite(codeCanceled)
	})
}

// bitmap helpers for acceptMsg.
func bitmapSet(b []byte, i int)      { b[i/8] |= 1 << (i % 8) }
func bitmapHas(b []byte, i int) bool { return i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }
