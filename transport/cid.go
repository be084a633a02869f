package transport

import (
	"crypto/rand"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// cidLen is the length of every connection ID ferry issues: a 4-byte router
// tag naming the endpoint, then 4 random bytes.
const cidLen = 8

// routerTag names one endpoint of a Socket inside the QUIC connection IDs it
// issues, so a QUIC packet arriving from an unknown address still reaches its
// endpoint. Zero is never a valid tag.
type routerTag uint32

// cidGenerator is the quic.ConnectionIDGenerator of one endpoint: every
// connection ID it issues starts with the endpoint's router tag. It
// remembers the last cidRecent it issued, so the endpoint can tell a
// packet quic-go will route to its connection from one it will drop
// (issued).
type cidGenerator struct {
	tag routerTag

	mu     sync.Mutex               // serialises issuing
	recent atomic.Pointer[[]uint32] // random halves of the newest IDs, newest last; replaced, never changed
}

// cidRecent bounds the IDs a generator remembers: quic-go keeps a few
// active per connection and issues new ones only as the peer retires old
// ones (on each migration), long after which packets for the oldest stop.
const cidRecent = 32

var _ quic.ConnectionIDGenerator = (*cidGenerator)(nil)

// GenerateConnectionID returns tag || 4 random bytes.
func (g *cidGenerator) GenerateConnectionID() (quic.ConnectionID, error) {
	var b [cidLen]byte
	binary.BigEndian.PutUint32(b[:4], uint32(g.tag))
	if _, err := rand.Read(b[4:]); err != nil {
		return quic.ConnectionID{}, err
	}
	g.mu.Lock()
	var ids []uint32
	if p := g.recent.Load(); p != nil {
		ids = *p
	}
	ids = append(ids[max(0, len(ids)-cidRecent+1):len(ids):len(ids)], binary.BigEndian.Uint32(b[4:]))
	g.recent.Store(&ids)
	g.mu.Unlock()
	return quic.ConnectionIDFromBytes(b[:]), nil
}

// issued reports whether the destination connection ID of QUIC packet b
// is one of the last cidRecent g issued. Safe for concurrent use.
func (g *cidGenerator) issued(b []byte) bool {
	id, ok := quicDCID(b)
	if !ok || len(id) != cidLen || routerTag(binary.BigEndian.Uint32(id[:4])) != g.tag {
		return false
	}
	p := g.recent.Load()
	if p == nil {
		return false
	}
	return slices.Contains(*p, binary.BigEndian.Uint32(id[4:]))
}

// ConnectionIDLen is fixed at 8 bytes.
func (g *cidGenerator) ConnectionIDLen() int { return cidLen }

// quicRoute is what the router can learn from a QUIC packet's header without
// decrypting it.
type quicRoute struct {
	tag     routerTag // 0 when the destination CID is not one of ours
	initial bool      // a long-header Initial: the client's first packets carry a random CID
}

// parseQUICRoute extracts the router tag from a QUIC packet's destination
// connection ID (quicDCID) and tells a client's Initial by its long
// header's version (4 bytes after the first) and type bits.
func parseQUICRoute(b []byte) (quicRoute, bool) {
	id, ok := quicDCID(b)
	if !ok {
		return quicRoute{}, false
	}
	r := quicRoute{}
	if b[0]&0x80 != 0 {
		// QUIC v1 Initial: long-header type bits 0b00; QUIC v2 Initial: 0b01.
		version := binary.BigEndian.Uint32(b[1:5])
		typ := (b[0] & 0x30) >> 4
		r.initial = (version == 1 && typ == 0) || (version == 0x6b3343cf && typ == 1)
	}
	if len(id) == cidLen {
		r.tag = routerTag(binary.BigEndian.Uint32(id[:4]))
	}
	return r, true
}

// quicDCID returns the destination connection ID of QUIC packet b: in a
// short header the cidLen bytes after the first (the length is not on the
// wire; every ID ferry issues has it), in a long header the ID its length
// byte announces (at most 20 bytes).
func quicDCID(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0]&0x40 == 0 {
		return nil, false
	}
	if b[0]&0x80 == 0 { // short header
		if len(b) < 1+cidLen {
			return nil, false
		}
		return b[1 : 1+cidLen], true
	}
	if len(b) < 6 {
		return nil, false
	}
	n := int(b[5])
	if n > 20 || len(b) < 6+n {
		return nil, false
	}
	return b[6 : 6+n], true
}
