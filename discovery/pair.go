package discovery

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/uuid"

	"ferry/discovery/code"
	"ferry/discovery/cpace"
	"ferry/discovery/mailbox"
	"ferry/transport"
)

// Side is which side of a transfer this peer is.
type Side int

// Sides. The sender makes the code; the receiver types it.
const (
	Sender Side = iota
	Receiver
)

func (s Side) String() string {
	if s == Receiver {
		return "receiver"
	}
	return "sender"
}

// Errors callers branch on.
var (
	// ErrCodeMismatch: the two sides typed different codes (or someone
	// guessed). The nameplate is burned; the sender needs a new code.
	ErrCodeMismatch = errors.New("code mismatch: the code does not match the sender's; check it and ask the sender for a new one")
	// ErrTampered: a pairing message was altered after the PAKE (a
	// meddling mailbox server); nothing from it was used.
	ErrTampered = errors.New("pairing messages were altered in transit; nothing was accepted")
)

// Offer is what a side tells its peer once the PAKE has authenticated them,
// encrypted under a key derived from it.
type Offer struct {
	// SessionID names the transfer; the sender's is the one both use.
	SessionID uuid.UUID
	// Fingerprint is this side's transport certificate, for the peer to pin.
	Fingerprint transport.Fingerprint
	// Candidates are addresses this side's transport socket may be reached at.
	Candidates []netip.AddrPort
	// TCPCandidates are addresses this side's TCP punching port may be
	// reached at (its host addresses and the public address the rendezvous
	// server saw it come from).
	TCPCandidates []netip.AddrPort
	// CandidateTypes says how this side learned each candidate (UDP and
	// TCP); addresses missing here count as host addresses if private and
	// server-reflexive otherwise.
	CandidateTypes map[netip.AddrPort]transport.CandidateType
	// Relay is the relay both sides are to use, HOST:PORT: the address the
	// sender's rendezvous server advertised (one of several sharing a
	// store). Only the sender's is sent; Invitation.Pair fills it in.
	Relay string
}

// Result is what pairing hands to the transport.
type Result struct {
	// Side is this peer's side of the transfer.
	Side Side
	// TransportKey authenticates the transport's control packets (32 bytes).
	TransportKey []byte
	// SessionID is the sender's transfer session ID.
	SessionID uuid.UUID
	// PeerFingerprint pins the peer's certificate.
	PeerFingerprint transport.Fingerprint
	// PeerCandidates are the peer's addresses to probe.
	PeerCandidates []netip.AddrPort
	// PeerTCPCandidates are the peer's TCP punching addresses.
	PeerTCPCandidates []netip.AddrPort
	// PeerCandidateTypes says how the peer learned its candidates.
	PeerCandidateTypes map[netip.AddrPort]transport.CandidateType
	// Relay is the relay to use, HOST:PORT, when the sender's rendezvous
	// server named one (several servers behind one name: the pair must
	// meet on one); empty means the configured rendezvous address.
	Relay string
}

// TransportRole maps the side to the transport's role: the sender accepts,
// the receiver dials.
func (r *Result) TransportRole() transport.Role {
	if r.Side == Sender {
		return transport.RoleAcceptor
	}
	return transport.RoleDialer
}

// Mailbox is the part of a mailbox client pairing uses (*mailbox.Client).
type Mailbox interface {
	Add(ctx context.Context, phase string, body []byte) error
	Receive(ctx context.Context, phase string) ([]byte, error)
	Close(ctx context.Context, mood mailbox.Mood) error
}

// Mailbox phases, in order.
const (
	phasePAKE    = "pake"
	phaseConfirm = "confirm"
	phaseOffer   = "offer"
)

// runPAKE pairs over a claimed mailbox: CPace on the code's words, explicit
// key confirmation both ways, then the encrypted, transcript-bound exchange
// of offers. On a wrong code it closes the mailbox "scary" (burning the
// nameplate) and returns ErrCodeMismatch. It does not close the mailbox on
// success; the caller does.
func runPAKE(ctx context.Context, mb Mailbox, side Side, c code.Code, own Offer) (*Result, error) {
	ci := channelID(c.Nameplate)
	party, peer := cpace.Initiator, Receiver
	if side == Receiver {
		party, peer = cpace.Responder, Sender
	}
	st, msg, err := cpace.Start(party, c.Password(), ci, nil, []byte(side.String()))
	if err != nil {
		return nil, fmt.Errorf("discovery: start PAKE: %w", err)
	}
	if err := mb.Add(ctx, phasePAKE, msg); err != nil {
		return nil, fmt.Errorf("discovery: send PAKE message: %w", err)
	}
	peerMsg, err := mb.Receive(ctx, phasePAKE)
	if err != nil {
		return nil, fmt.Errorf("discovery: waiting for the other side: %w", err)
	}
	isk, err := st.Finish(peerMsg)
	if err != nil {
		// A malformed PAKE message is what a wrong or meddling peer sends.
		_ = mb.Close(ctx, mailbox.Scary)
		return nil, fmt.Errorf("%w (%v)", ErrCodeMismatch, err)
	}
	if string(st.PeerAD()) != peer.String() {
		_ = mb.Close(ctx, mailbox.Scary)
		return nil, fmt.Errorf("%w: both sides claim to be the %s", ErrCodeMismatch, side)
	}
	transcript := transcriptHash(c.Nameplate, side, msg, peerMsg)
	ks, err := deriveKeys(isk, transcript)
	if err != nil {
		return nil, err
	}

	if err := mb.Add(ctx, phaseConfirm, ks.confirmTag(side)); err != nil {
		return nil, fmt.Errorf("discovery: send key confirmation: %w", err)
	}
	peerTag, err := mb.Receive(ctx, phaseConfirm)
	if err != nil {
		return nil, fmt.Errorf("discovery: waiting for key confirmation: %w", err)
	}
	if !hmac.Equal(peerTag, ks.confirmTag(peer)) {
		_ = mb.Close(ctx, mailbox.Scary)
		return nil, ErrCodeMismatch
	}

	sealed, err := ks.seal(side, own)
	if err != nil {
		return nil, err
	}
	if err := mb.Add(ctx, phaseOffer, sealed); err != nil {
		return nil, fmt.Errorf("discovery: send offer: %w", err)
	}
	peerSealed, err := mb.Receive(ctx, phaseOffer)
	if err != nil {
		return nil, fmt.Errorf("discovery: waiting for the other side's offer: %w", err)
	}
	theirs, err := ks.open(peer, peerSealed)
	if err != nil {
		_ = mb.Close(ctx, mailbox.Scary)
		return nil, err
	}
	res := &Result{
		Side:               side,
		TransportKey:       ks.transport,
		PeerFingerprint:    theirs.Fingerprint,
		PeerCandidates:     theirs.Candidates,
		PeerTCPCandidates:  theirs.TCPCandidates,
		PeerCandidateTypes: theirs.CandidateTypes,
		SessionID:          own.SessionID,
		Relay:              own.Relay,
	}
	if side == Receiver {
		res.SessionID = theirs.SessionID
		res.Relay = theirs.Relay
	}
	return res, nil
}

// channelID binds the PAKE to ferry, the protocol version and the nameplate.
func channelID(nameplate string) []byte {
	ci := []byte("ferry/pair/v1")
	ci = binary.AppendUvarint(ci, uint64(len(nameplate)))
	return append(ci, nameplate...)
}

// transcriptHash orders both PAKE messages by side so both sides agree.
func transcriptHash(nameplate string, side Side, own, peer []byte) []byte {
	s, r := own, peer
	if side == Receiver {
		s, r = peer, own
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte("ferry/pair/v1 transcript"), []byte(nameplate), s, r} {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(part)))
		h.Write(l[:])
		h.Write(part)
	}
	return h.Sum(nil)
}

// pairKeys are everything derived from the PAKE's session key.
type pairKeys struct {
	transcript         []byte
	confirmS, confirmR []byte
	sealS, sealR       []byte
	transport          []byte
}

func deriveKeys(isk, transcript []byte) (*pairKeys, error) {
	prk, err := hkdf.Extract(sha256.New, isk, transcript)
	if err != nil {
		return nil, fmt.Errorf("discovery: derive keys: %w", err)
	}
	k := &pairKeys{transcript: transcript}
	for _, d := range []struct {
		out  *[]byte
		info string
	}{
		{&k.confirmS, "ferry/pair/v1 confirm sender"},
		{&k.confirmR, "ferry/pair/v1 confirm receiver"},
		{&k.sealS, "ferry/pair/v1 offer sender"},
		{&k.sealR, "ferry/pair/v1 offer receiver"},
		{&k.transport, "ferry/pair/v1 transport"},
	} {
		if *d.out, err = hkdf.Expand(sha256.New, prk, d.info, 32); err != nil {
			return nil, fmt.Errorf("discovery: derive keys: %w", err)
		}
	}
	return k, nil
}

func (k *pairKeys) confirmTag(s Side) []byte {
	key := k.confirmS
	if s == Receiver {
		key = k.confirmR
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ferry/pair/v1 key confirmation"))
	return m.Sum(nil)
}

func (k *pairKeys) aead(s Side) (cipher.AEAD, error) {
	key := k.sealS
	if s == Receiver {
		key = k.sealR
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// offerJSON is the offer's wire form, inside the AEAD.
type offerJSON struct {
	Version     int      `json:"v"`
	SessionID   string   `json:"session,omitempty"`
	Fingerprint string   `json:"fingerprint"`
	Candidates  []string `json:"candidates"`
	// TCP candidates and candidate types came later: a peer that does not
	// know them ignores them.
	TCPCandidates []string `json:"tcp_candidates,omitempty"`
	// Types maps a candidate ("IP:PORT", of either list) to how it was
	// learned ("host", "srflx"); candidates without one are inferred.
	Types map[string]string `json:"types,omitempty"`
	// Relay (the sender's only) is the relay both sides use, when its
	// rendezvous server advertised one.
	Relay string `json:"relay,omitempty"`
}

// seal encrypts s's offer. Each key seals exactly one message, so a zero
// nonce is safe; the transcript hash is the associated data, binding the
// certificate fingerprint to this PAKE run. Candidates the peer would drop
// (transport.UsableCandidate) are left out, and at most
// transport.MaxPeerCandidates go in, the first ones, so the peer never
// refuses the offer for its size.
func (k *pairKeys) seal(s Side, o Offer) ([]byte, error) {
	w := offerJSON{Version: 1, Fingerprint: hex.EncodeToString(o.Fingerprint[:])}
	if s == Sender {
		w.SessionID = o.SessionID.String()
		w.Relay = o.Relay
	}
	w.Candidates = sealCandidates(o.Candidates)
	w.TCPCandidates = sealCandidates(o.TCPCandidates)
	for a, t := range o.CandidateTypes {
		// Types only for the candidates that went in.
		if c := transport.UnmapAddrPort(a).String(); slices.Contains(w.Candidates, c) || slices.Contains(w.TCPCandidates, c) {
			if w.Types == nil {
				w.Types = make(map[string]string)
			}
			w.Types[c] = t.String()
		}
	}
	plain, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	a, err := k.aead(s)
	if err != nil {
		return nil, err
	}
	return a.Seal(nil, make([]byte, a.NonceSize()), plain, k.transcript), nil
}

// open decrypts and validates the offer of s, the peer. An offer with more
// than transport.MaxPeerCandidates addresses is refused; addresses that do
// not parse or that transport.UsableCandidate rejects (unspecified,
// multicast, broadcast, port 0) are dropped and the others kept.
func (k *pairKeys) open(s Side, sealed []byte) (Offer, error) {
	a, err := k.aead(s)
	if err != nil {
		return Offer{}, err
	}
	plain, err := a.Open(nil, make([]byte, a.NonceSize()), sealed, k.transcript)
	if err != nil {
		return Offer{}, ErrTampered
	}
	var w offerJSON
	if err := json.Unmarshal(plain, &w); err != nil || w.Version != 1 {
		return Offer{}, fmt.Errorf("%w: unreadable offer", ErrTampered)
	}
	var o Offer
	fp, err := hex.DecodeString(w.Fingerprint)
	if err != nil || len(fp) != len(o.Fingerprint) {
		return Offer{}, fmt.Errorf("%w: bad fingerprint", ErrTampered)
	}
	copy(o.Fingerprint[:], fp)
	if s == Sender {
		if o.SessionID, err = uuid.Parse(w.SessionID); err != nil {
			return Offer{}, fmt.Errorf("%w: bad session id", ErrTampered)
		}
		if w.Relay != "" {
			if err := code.ValidateRendezvous(w.Relay); err != nil {
				return Offer{}, fmt.Errorf("%w: bad relay address: %w", ErrTampered, err)
			}
			o.Relay = w.Relay
		}
	}
	if o.Candidates, err = openCandidates(w.Candidates); err != nil {
		return Offer{}, err
	}
	if o.TCPCandidates, err = openCandidates(w.TCPCandidates); err != nil {
		return Offer{}, err
	}
	o.CandidateTypes = openTypes(w.Types, o.Candidates, o.TCPCandidates)
	return o, nil
}

// openTypes keeps the peer's candidate types that name one of its
// candidates and a type a peer can know of its own addresses (host,
// server-reflexive or port-mapped); anything else is dropped, and then inferred.
func openTypes(wire map[string]string, lists ...[]netip.AddrPort) map[netip.AddrPort]transport.CandidateType {
	var out map[netip.AddrPort]transport.CandidateType
	for _, list := range lists {
		for _, c := range list {
			t, ok := transport.ParseCandidateType(wire[c.String()])
			if !ok || (t != transport.CandidateHost && t != transport.CandidateServerReflexive && t != transport.CandidatePortMapped) {
				continue
			}
			if out == nil {
				out = make(map[netip.AddrPort]transport.CandidateType)
			}
			out[c] = t
		}
	}
	return out
}

// sealCandidates is the wire form of cands: the usable ones, unmapped, at
// most transport.MaxPeerCandidates, the first ones.
func sealCandidates(cands []netip.AddrPort) []string {
	var out []string
	for _, c := range cands {
		if len(out) == transport.MaxPeerCandidates {
			break
		}
		if transport.UsableCandidate(c) {
			out = append(out, transport.UnmapAddrPort(c).String())
		}
	}
	return out
}

// openCandidates parses a peer's candidate list: more than
// transport.MaxPeerCandidates is tampering; addresses that do not parse or
// are not usable are dropped, the others kept.
func openCandidates(wire []string) ([]netip.AddrPort, error) {
	if len(wire) > transport.MaxPeerCandidates {
		return nil, fmt.Errorf("%w: %d candidates", ErrTampered, len(wire))
	}
	var out []netip.AddrPort
	for _, c := range wire {
		ap, err := netip.ParseAddrPort(c)
		if err != nil || !transport.UsableCandidate(ap) {
			continue // one odd address does not spoil the rest
		}
		out = append(out, transport.UnmapAddrPort(ap))
	}
	return out, nil
}
