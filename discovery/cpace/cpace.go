// Package cpace implements the CPace balanced password-authenticated key
// exchange of draft-irtf-cfrg-cpace-21 ("CPace, a balanced composable PAKE",
// M. Abdalla, B. Haase, J. Hesse) for the cipher suite CPACE-RISTR255-SHA512
// (group ristretto255, hash SHA-512), in the initiator-responder setting.
//
// The package owns the CPace protocol run only: the generator derivation from
// the password (PRS), the channel identifier (CI) and the session id (sid)
// (draft Sections 8.1 and 8.3), scalar sampling, the wire encoding of the two
// protocol messages lv_cat(Y, AD), the validation of the peer's message
// (rejecting malformed encodings, non-canonical points and the neutral
// element, draft Sections 7.2, 8.3 and 8.3.1) and the derivation of the
// intermediate session key
//
//	ISK = SHA-512(lv_cat("CPaceRistretto255_ISK", sid, K) ||
//	              lv_cat(Ya, ADa) || lv_cat(Yb, ADb))
//
// It is used by ferry's pairing, which builds CI (protocol and nameplate) and
// each party's AD (its side of the transfer), chooses the password and sid,
// transports the two messages and derives its own keys from the ISK (the
// draft recommends passing ISK through a KDF and adding explicit key
// confirmation, see draft Sections 10.3 and 10.4; both are the caller's
// responsibility).
//
// CPace requires that a participant does not act as both the initiator and
// the responder with the same (PRS, sid) and that the parties' identities
// are bound into CI or the associated data (draft Section 10.1); this too is
// up to the caller.
package cpace

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"io"

	"github.com/gtank/ristretto255"
)

// Party says which party of the initiator-responder exchange a State is.
// The initiator's message and associated data come first in the transcript.
type Party int

const (
	// Initiator is party A of the draft: its message (Ya, ADa) comes first
	// in the transcript.
	Initiator Party = iota
	// Responder is party B of the draft: its message (Yb, ADb) comes second
	// in the transcript.
	Responder
)

// ErrInvalidMessage is returned by Finish when the peer's message is
// malformed, carries a non-canonical or invalid ristretto255 encoding, or
// leads to the neutral element as the shared point K (in which case the
// draft requires the run to abort).
var ErrInvalidMessage = errors.New("cpace: invalid peer message")

var (
	errInvalidParty = errors.New("cpace: invalid party")
	errUsed         = errors.New("cpace: state already used")
	errBadScalar    = errors.New("cpace: invalid scalar")
)

const (
	// dsi is G_Ristretto255.DSI.
	dsi = "CPaceRistretto255"
	// dsiISK is G.DSI || "_ISK".
	dsiISK = dsi + "_ISK"
	// sInBytes is SHA-512's input block size, H.s_in_bytes.
	sInBytes = 128
	// pointLen is the length of an encoded ristretto255 element.
	pointLen = 32
	// scalarLen is the length of an encoded scalar.
	scalarLen = 32
)

// State is one side's run; it must be used once. It is not safe for
// concurrent use.
type State struct {
	party  Party
	sid    []byte
	ad     []byte
	y      *ristretto255.Scalar
	ownY   []byte // encoded public share Y of this side
	used   bool
	peerAD []byte
	trans  []byte
}

// Start begins a run as party: prs is the password, ci the channel
// identifier (the parties' identities and the nameplate, built by the
// caller), sid the session id (may be empty), ad this side's associated
// data. It returns this side's message (the draft's msg: lv_cat(Y, AD)) to
// send to the peer.
func Start(party Party, prs, ci, sid, ad []byte) (*State, []byte, error) {
	y, err := sampleScalar(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	return start(party, prs, ci, sid, ad, y)
}

// startWithScalar is Start with the secret scalar given explicitly as its
// 32-byte little-endian canonical encoding; it exists for deterministic test
// vectors. A zero scalar is rejected.
func startWithScalar(party Party, prs, ci, sid, ad, scalar []byte) (*State, []byte, error) {
	y, err := ristretto255.NewScalar().SetCanonicalBytes(scalar)
	if err != nil || y.Equal(ristretto255.NewScalar()) == 1 {
		return nil, nil, errBadScalar
	}
	return start(party, prs, ci, sid, ad, y)
}

func start(party Party, prs, ci, sid, ad []byte, y *ristretto255.Scalar) (*State, []byte, error) {
	if party != Initiator && party != Responder {
		return nil, nil, errInvalidParty
	}
	g := calculateGenerator(prs, ci, sid)
	// G.scalar_mult(y, g) = encode(y * g).
	Y := ristretto255.NewElement().ScalarMult(y, g).Bytes()
	s := &State{
		party: party,
		sid:   clone(sid),
		ad:    clone(ad),
		y:     y,
		ownY:  Y,
	}
	return s, lvCat(Y, ad), nil
}

// Finish takes the peer's message and returns the intermediate session key
// ISK (64 bytes). It returns ErrInvalidMessage for a malformed message or an
// invalid/identity point. The State is consumed by the first call, whatever
// its outcome; the transcript the ISK was derived from is available from
// Transcript after a successful call.
func (s *State) Finish(peerMsg []byte) (isk []byte, err error) {
	if s.used {
		return nil, errUsed
	}
	s.used = true
	defer s.y.Zero()

	peerY, peerAD, ok := parseMessage(peerMsg)
	if !ok {
		return nil, ErrInvalidMessage
	}
	K, ok := scalarMultVfy(s.y, peerY)
	if !ok {
		return nil, ErrInvalidMessage
	}

	var trans []byte
	if s.party == Initiator {
		trans = transcriptIR(s.ownY, s.ad, peerY, peerAD)
	} else {
		trans = transcriptIR(peerY, peerAD, s.ownY, s.ad)
	}
	isk = computeISK(s.sid, K, trans)
	s.peerAD = clone(peerAD)
	s.trans = trans
	return isk, nil
}

// PeerAD returns the associated data the peer sent (valid after Finish).
func (s *State) PeerAD() []byte {
	return clone(s.peerAD)
}

// Transcript returns the transcript the ISK was derived from,
// transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) || lv_cat(Yb, ADb)
// (valid after a successful Finish; nil before). Its two halves are the two
// protocol messages, as used for key confirmation in draft Section 10.4.
func (s *State) Transcript() []byte {
	return clone(s.trans)
}

// sampleScalar implements the recommended G.sample_scalar of draft
// Section 8.3: 32 random bytes with the bits above group_size_bits (252)
// cleared, read as a little-endian integer. The result is always below the
// group order, hence canonical. The (negligibly likely) zero scalar is
// resampled.
func sampleScalar(r io.Reader) (*ristretto255.Scalar, error) {
	var b [scalarLen]byte
	defer clear(b[:])
	zero := ristretto255.NewScalar()
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		b[scalarLen-1] &= 0x0f
		y, err := ristretto255.NewScalar().SetCanonicalBytes(b[:])
		if err != nil {
			// Unreachable: b < 2^252 < group order.
			return nil, err
		}
		if y.Equal(zero) == 0 {
			return y, nil
		}
	}
}

// calculateGenerator implements G_Ristretto255.calculate_generator of draft
// Section 8.3: the generator string hashed to 64 bytes with SHA-512, then
// mapped with the ristretto255 element derivation (RFC 9496 Section 4.3.4).
func calculateGenerator(prs, ci, sid []byte) *ristretto255.Element {
	h := sha512.Sum512(generatorString([]byte(dsi), prs, ci, sid, sInBytes))
	g, err := ristretto255.NewElement().SetUniformBytes(h[:])
	if err != nil {
		panic("cpace: internal error: " + err.Error()) // h is always 64 bytes
	}
	return g
}

// generatorString implements generator_string of draft Section 8.1 /
// Appendix A.2: lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid) with
// len_zpad = max(0, s_in_bytes - 1 - len(prepend_len(PRS)) -
// len(prepend_len(DSI))).
func generatorString(dsi, prs, ci, sid []byte, sInBytes int) []byte {
	zpad := max(0, sInBytes-1-lenPrefixed(len(prs))-lenPrefixed(len(dsi)))
	return lvCat(dsi, prs, make([]byte, zpad), ci, sid)
}

// scalarMultVfy implements G.scalar_mult_vfy(y, X) of draft Section 8.3 and
// the abort check of Section 7.2: it decodes X (rejecting non-canonical or
// invalid encodings), computes K = encode(y * decode(X)) and reports false
// if decoding failed or K is the neutral element G.I.
func scalarMultVfy(y *ristretto255.Scalar, X []byte) ([]byte, bool) {
	P, err := ristretto255.NewElement().SetCanonicalBytes(X)
	if err != nil {
		return nil, false
	}
	K := ristretto255.NewElement().ScalarMult(y, P)
	if K.Equal(ristretto255.NewIdentityElement()) == 1 {
		return nil, false
	}
	return K.Bytes(), true
}

// computeISK returns H.hash(lv_cat(G.DSI || "_ISK", sid, K) || transcript)
// (draft Section 7.2).
func computeISK(sid, K, transcript []byte) []byte {
	h := sha512.New()
	h.Write(lvCat([]byte(dsiISK), sid, K))
	h.Write(transcript)
	return h.Sum(nil)
}

// transcriptIR implements transcript_ir of draft Appendix A.3.4.
func transcriptIR(Ya, ADa, Yb, ADb []byte) []byte {
	return append(lvCat(Ya, ADa), lvCat(Yb, ADb)...)
}

// transcriptOC implements transcript_oc of draft Appendix A.3.6, used in the
// symmetric (parallel) setting. This package runs the initiator-responder
// setting; transcriptOC exists to check the draft's symmetric ISK vector.
func transcriptOC(Ya, ADa, Yb, ADb []byte) []byte {
	return oCat(lvCat(Ya, ADa), lvCat(Yb, ADb))
}

// oCat implements o_cat of draft Appendix A.3.2: b"oc" followed by the
// lexicographically larger string, then the other.
func oCat(a, b []byte) []byte {
	out := []byte("oc")
	if lexLarger(a, b) {
		return append(append(out, a...), b...)
	}
	return append(append(out, b...), a...)
}

// lexLarger implements lexiographically_larger of draft Appendix A.3.1.
func lexLarger(a, b []byte) bool {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}

// parseMessage splits a peer message lv_cat(Y, AD) into Y and AD. It
// requires minimal LEB128 length prefixes, a 32-byte Y and that AD ends
// exactly at the end of the message, so that every accepted message is the
// unique encoding of its (Y, AD). Y is not decoded here.
func parseMessage(msg []byte) (Y, AD []byte, ok bool) {
	Y, rest, ok := readPrefixed(msg)
	if !ok || len(Y) != pointLen {
		return nil, nil, false
	}
	AD, rest, ok = readPrefixed(rest)
	if !ok || len(rest) != 0 {
		return nil, nil, false
	}
	return Y, AD, true
}

// readPrefixed reads one prepend_len-encoded field from the front of b.
func readPrefixed(b []byte) (field, rest []byte, ok bool) {
	var n uint64
	for i := 0; ; i++ {
		if i >= len(b) || i >= 9 { // 9*7 = 63 bits: far beyond any message
			return nil, nil, false
		}
		c := b[i]
		n |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return nil, nil, false // non-minimal encoding
			}
			b = b[i+1:]
			break
		}
	}
	if n > uint64(len(b)) {
		return nil, nil, false
	}
	return b[:n:n], b[n:], true
}

// appendLen appends the LEB128 encoding of n to b.
func appendLen(b []byte, n int) []byte {
	u := uint64(n)
	for u >= 0x80 {
		b = append(b, byte(u&0x7f)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// lenPrefixed returns len(prepend_len(x)) for len(x) == n.
func lenPrefixed(n int) int {
	return len(appendLen(nil, n)) + n
}

// lvCat implements lv_cat of draft Appendix A.1.3: the concatenation of
// prepend_len(arg) for every argument, where prepend_len prefixes the
// LEB128-encoded length.
func lvCat(args ...[]byte) []byte {
	size := 0
	for _, a := range args {
		size += lenPrefixed(len(a))
	}
	out := make([]byte, 0, size)
	for _, a := range args {
		out = appendLen(out, len(a))
		out = append(out, a...)
	}
	return out
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
