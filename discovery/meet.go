package discovery

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"ferry/discovery/mailbox"
	"ferry/transport"
)

// Meeting again. Two peers that paired earlier and lost each other's
// addresses (a laptop moved to another network, and no relay carries the
// news) meet at the rendezvous mailbox without a new code: both derive,
// from the pairing's transport key, the same meet nameplate (which the
// server creates on first use) and a side id each (so a peer whose earlier
// connection died silently takes its own place again), and each leaves
// its current candidates there, sealed with a key only the two of them
// hold, and reads the other's. The server learns that two parties met and
// the size of what they left, not what it says.
//
//	nameplate  = "meet-" || base64url(HKDF(K, "ferry/discovery/v1 meet nameplate"))
//	side(role) = hex(HKDF(K, "ferry/discovery/v1 meet side <role>")[:8])
//	seal(role) = HKDF(K, "ferry/discovery/v1 meet seal <role>"), AES-256-GCM,
//	             random 12-byte nonce before the ciphertext
//
// A sealed list carries the time it was made; a list older than
// meetMaxAge is ignored, so a server that replays an old one only makes
// the peer probe stale addresses, which answer nothing.

const (
	meetPhase = "candidates"
	// meetMaxAge bounds how old a candidate list may be: a move is
	// announced within seconds, and clocks may differ by a few minutes.
	meetMaxAge = 10 * time.Minute
	// meetLinger is how long, after the first of the peer's lists, a
	// newer one may still be waiting in the mailbox.
	meetLinger = 100 * time.Millisecond
)

// meetCandidate is one candidate in a sealed list.
type meetCandidate struct {
	Addr string `json:"addr"`
	Type string `json:"type"`
	TCP  bool   `json:"tcp,omitempty"`
}

type meetList struct {
	At         int64           `json:"at"` // Unix milliseconds
	Candidates []meetCandidate `json:"candidates"`
}

func meetKey(key []byte, label string, n int) []byte {
	k, err := hkdf.Key(sha256.New, key, nil, "ferry/discovery/v1 meet "+label, n)
	if err != nil {
		panic(fmt.Sprintf("discovery: hkdf: %v", err)) // only for lengths beyond 255 blocks
	}
	return k
}

// MeetNameplate is the mailbox nameplate two peers holding key meet at.
func MeetNameplate(key []byte) string {
	return mailbox.MeetPrefix + base64.RawURLEncoding.EncodeToString(meetKey(key, "nameplate", 32))
}

func meetSide(key []byte, role transport.Role) string {
	return hex.EncodeToString(meetKey(key, "side "+role.String(), 8))
}

func meetAEAD(key []byte, role transport.Role) cipher.AEAD {
	block, err := aes.NewCipher(meetKey(key, "seal "+role.String(), 32))
	if err != nil {
		panic(fmt.Sprintf("discovery: meet cipher: %v", err))
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("discovery: meet cipher: %v", err))
	}
	return aead
}

func sealMeetList(key []byte, role transport.Role, cands []transport.Announced, now time.Time) ([]byte, error) {
	l := meetList{At: now.UnixMilli()}
	for _, c := range cands {
		l.Candidates = append(l.Candidates, meetCandidate{Addr: c.Addr.String(), Type: c.Type.String(), TCP: c.TCP})
	}
	plain, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	aead := meetAEAD(key, role)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

// openMeetList opens a list the peer (of role peer) sealed.
func openMeetList(key []byte, peer transport.Role, b []byte, now time.Time) (at time.Time, cands []transport.Announced, err error) {
	aead := meetAEAD(key, peer)
	if len(b) < aead.NonceSize()+aead.Overhead() {
		return at, nil, errors.New("discovery: meet list too short")
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], nil)
	if err != nil {
		return at, nil, fmt.Errorf("discovery: meet list: %w", err)
	}
	var l meetList
	if err := json.Unmarshal(plain, &l); err != nil {
		return at, nil, fmt.Errorf("discovery: meet list: %w", err)
	}
	at = time.UnixMilli(l.At)
	if now.Sub(at) > meetMaxAge || at.Sub(now) > meetMaxAge {
		return at, nil, fmt.Errorf("discovery: meet list from %v is stale", at.UTC())
	}
	for _, c := range l.Candidates {
		ap, err := netip.ParseAddrPort(c.Addr)
		if err != nil || !transport.UsableCandidate(ap) {
			continue
		}
		t, _ := transport.ParseCandidateType(c.Type)
		cands = append(cands, transport.Announced{Addr: ap, Type: t, TCP: c.TCP})
	}
	return at, cands, nil
}

// MeetAgain meets the peer this side (role) paired with, whose transport
// key is key, at the rendezvous mailbox of rendezvous: it leaves own
// there and returns the newest candidate list the peer left, waiting for
// one until ctx ends.
func MeetAgain(ctx context.Context, rendezvous string, key []byte, role transport.Role, own []transport.Announced) ([]transport.Announced, error) {
	if rendezvous == "" {
		return nil, errors.New("discovery: no rendezvous server to meet at")
	}
	body, err := sealMeetList(key, role, own, time.Now())
	if err != nil {
		return nil, err
	}
	mb, err := mailbox.DialSide(ctx, rendezvous, meetSide(key, role))
	if err != nil {
		return nil, fmt.Errorf("discovery: meet: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = mb.Close(cctx, mailbox.Happy)
	}()
	if err := mb.Meet(ctx, MeetNameplate(key)); err != nil {
		return nil, fmt.Errorf("discovery: meet: %w", err)
	}
	if err := mb.Add(ctx, meetPhase, body); err != nil {
		return nil, fmt.Errorf("discovery: meet: %w", err)
	}
	peer := transport.RoleAcceptor
	if role == transport.RoleAcceptor {
		peer = transport.RoleDialer
	}
	var newest time.Time
	var best []transport.Announced
	for {
		rctx := ctx
		var cancel context.CancelFunc = func() {}
		if best != nil {
			rctx, cancel = context.WithTimeout(ctx, meetLinger)
		}
		b, err := mb.Receive(rctx, meetPhase)
		cancel()
		if err != nil {
			if best != nil {
				return best, nil
			}
			return nil, fmt.Errorf("discovery: meet: %w", err)
		}
		at, cands, err := openMeetList(key, peer, b, time.Now())
		if err != nil {
			continue // not from the peer, or stale: wait for another
		}
		if best == nil || at.After(newest) {
			newest, best = at, cands
			if best == nil {
				best = []transport.Announced{}
			}
		}
	}
}
