package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"ferry/discovery/code"
	"ferry/discovery/mailbox"
	"ferry/transport"
)

// hub is an in-memory mailbox for two sides: the unit's edge in these tests
// (the real server is exercised in session_test.go). tamper may rewrite a
// message in flight, as a malicious server could.
type hub struct {
	mu     sync.Mutex
	cond   *sync.Cond
	msgs   []hubMsg
	closed map[string]mailbox.Mood
	tamper func(side, phase string, body []byte) []byte
}

type hubMsg struct {
	side, phase string
	body        []byte
}

func newHub() *hub {
	h := &hub{closed: map[string]mailbox.Mood{}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

type hubSide struct {
	h    *hub
	side string
	read map[string]int // phase -> messages consumed
}

func (h *hub) side(name string) *hubSide { return &hubSide{h: h, side: name, read: map[string]int{}} }

func (s *hubSide) Add(_ context.Context, phase string, body []byte) error {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if s.h.tamper != nil {
		body = s.h.tamper(s.side, phase, bytes.Clone(body))
	}
	s.h.msgs = append(s.h.msgs, hubMsg{s.side, phase, bytes.Clone(body)})
	s.h.cond.Broadcast()
	return nil
}

func (s *hubSide) Receive(ctx context.Context, phase string) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { s.h.mu.Lock(); s.h.cond.Broadcast(); s.h.mu.Unlock() })
	defer stop()
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	for {
		seen := 0
		for _, m := range s.h.msgs {
			if m.side == s.side || m.phase != phase {
				continue
			}
			if seen == s.read[phase] {
				s.read[phase]++
				return m.body, nil
			}
			seen++
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.h.cond.Wait()
	}
}

func (s *hubSide) Close(_ context.Context, mood mailbox.Mood) error {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.closed[s.side] = mood
	return nil
}

func testOffer(t *testing.T, port uint16) Offer {
	t.Helper()
	cert, err := transport.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return Offer{SessionID: uuid.New(), Fingerprint: cert.Fingerprint, Candidates: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port)}}
}

type pairOutcome struct {
	res *Result
	err error
}

// pairBoth runs both sides over h with the codes given and returns their
// outcomes.
func pairBoth(t *testing.T, h *hub, sc, rc code.Code, so, ro Offer) (pairOutcome, pairOutcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sch := make(chan pairOutcome, 1)
	go func() {
		r, err := runPAKE(ctx, h.side("s"), Sender, sc, so)
		sch <- pairOutcome{r, err}
	}()
	r, err := runPAKE(ctx, h.side("r"), Receiver, rc, ro)
	return <-sch, pairOutcome{r, err}
}

func mustCode(t *testing.T, s string) code.Code {
	t.Helper()
	c, err := code.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPairSameCodeSharesKeysAndOffers(t *testing.T) {
	c, err := code.New("7")
	if err != nil {
		t.Fatal(err)
	}
	so, ro := testOffer(t, 1000), testOffer(t, 2000)
	s, r := pairBoth(t, newHub(), c, c, so, ro)
	if s.err != nil || r.err != nil {
		t.Fatalf("sender err %v, receiver err %v", s.err, r.err)
	}
	if !bytes.Equal(s.res.TransportKey, r.res.TransportKey) || len(s.res.TransportKey) != 32 {
		t.Fatal("the two sides derived different transport keys")
	}
	if s.res.PeerFingerprint != ro.Fingerprint || r.res.PeerFingerprint != so.Fingerprint {
		t.Fatal("fingerprints not exchanged")
	}
	if r.res.SessionID != so.SessionID || s.res.SessionID != so.SessionID {
		t.Fatalf("session IDs: sender %v, receiver %v, want the sender's %v", s.res.SessionID, r.res.SessionID, so.SessionID)
	}
	if len(r.res.PeerCandidates) != 1 || r.res.PeerCandidates[0] != so.Candidates[0] {
		t.Fatalf("receiver got candidates %v", r.res.PeerCandidates)
	}
	if s.res.Side != Sender || r.res.Side != Receiver {
		t.Fatalf("sides %v and %v, want sender and receiver", s.res.Side, r.res.Side)
	}
	if s.res.TransportRole() == r.res.TransportRole() {
		t.Fatal("both sides got the same transport role")
	}
	// A second pairing with the same code gives fresh keys.
	s2, _ := pairBoth(t, newHub(), c, c, so, ro)
	if bytes.Equal(s2.res.TransportKey, s.res.TransportKey) {
		t.Fatal("two runs with the same code derived the same key")
	}
}

func TestPairWrongCodeIsMismatchOnBothSides(t *testing.T) {
	sc := mustCode(t, "7-aardvark-adroitness")
	rc := mustCode(t, "7-aardvark-adviser")
	h := newHub()
	s, r := pairBoth(t, h, sc, rc, testOffer(t, 1), testOffer(t, 2))
	if !errors.Is(s.err, ErrCodeMismatch) || !errors.Is(r.err, ErrCodeMismatch) {
		t.Fatalf("sender err %v, receiver err %v: want code mismatch on both", s.err, r.err)
	}
	if h.closed["s"] != mailbox.Scary || h.closed["r"] != mailbox.Scary {
		t.Fatalf("moods %v: both sides must close scary so the nameplate burns", h.closed)
	}
	for _, m := range h.msgs {
		if m.phase == phaseOffer {
			t.Fatal("an offer was sent after a failed key confirmation")
		}
	}
}

// TestPairRejectsSubstitutedFingerprint plays a mailbox server that swaps
// the sealed offer for one of its own making: the receiver rejects it.
func TestPairRejectsSubstitutedFingerprint(t *testing.T) {
	c, _ := code.New("9")
	so, ro := testOffer(t, 1), testOffer(t, 2)
	// A sealed offer from another run with the same code (what a server
	// could replay): sealed under that run's keys.
	var replay []byte
	h0 := newHub()
	if s, _ := pairBoth(t, h0, c, c, testOffer(t, 3), testOffer(t, 4)); s.err != nil {
		t.Fatal(s.err)
	}
	for _, m := range h0.msgs {
		if m.side == "s" && m.phase == phaseOffer {
			replay = m.body
		}
	}
	// Without the code the server cannot make a valid offer of its own; it
	// can only alter, cut, forge or replay ciphertext.
	for name, change := range map[string]func([]byte) []byte{
		"flipped bit": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated":   func(b []byte) []byte { return b[:len(b)-1] },
		"forged":      func(b []byte) []byte { return bytes.Repeat([]byte{0x42}, len(b)) },
		"replayed":    func([]byte) []byte { return bytes.Clone(replay) },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHub()
			h.tamper = func(side, phase string, body []byte) []byte {
				if side == "s" && phase == phaseOffer {
					return change(body)
				}
				return body
			}
			_, r := pairBoth(t, h, c, c, so, ro)
			if !errors.Is(r.err, ErrTampered) {
				t.Fatalf("receiver err %v, want ErrTampered", r.err)
			}
		})
	}
}

func TestPairRejectsTwoSenders(t *testing.T) {
	c, _ := code.New("5")
	h := newHub()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	offer := testOffer(t, 1)
	for _, side := range []string{"a", "b"} {
		go func() {
			_, err := runPAKE(ctx, h.side(side), Sender, c, offer)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrCodeMismatch) {
			t.Fatalf("err %v, want code mismatch when both sides claim to send", err)
		}
	}
}

// testKeys derives pairing keys from a random session key, as a finished
// PAKE would.
func testKeys(t *testing.T) *pairKeys {
	t.Helper()
	isk := make([]byte, 64)
	rand.Read(isk)
	k, err := deriveKeys(isk, []byte("test transcript"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealJSON seals w as side's offer under k, bypassing seal's own rules, as a
// broken or hostile peer could.
func sealJSON(t *testing.T, k *pairKeys, side Side, w offerJSON) []byte {
	t.Helper()
	plain, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	a, err := k.aead(side)
	if err != nil {
		t.Fatal(err)
	}
	return a.Seal(nil, make([]byte, a.NonceSize()), plain, k.transcript)
}

// openJSON opens side's sealed offer to its wire form, to see exactly what
// seal put in.
func openJSON(t *testing.T, k *pairKeys, side Side, sealed []byte) offerJSON {
	t.Helper()
	a, err := k.aead(side)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := a.Open(nil, make([]byte, a.NonceSize()), sealed, k.transcript)
	if err != nil {
		t.Fatal(err)
	}
	var w offerJSON
	if err := json.Unmarshal(plain, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// unusableCandidates are addresses no offer may make ferry probe:
// unspecified, multicast, limited broadcast (also IPv4-mapped) and port 0.
var unusableCandidates = []string{
	"0.0.0.0:1", "[::]:5", "224.0.0.1:5", "[ff02::1]:5", "255.255.255.255:5", "1.2.3.4:0",
	"[::ffff:0.0.0.0]:7", "[::ffff:224.0.0.1]:5", "[::ffff:255.255.255.255]:5",
}

// TestOpenDropsUnusableCandidates: from a hand-built offer holding the
// unusable addresses and one good one, only the good one survives (and the
// offer is not refused for the bad ones).
func TestOpenDropsUnusableCandidates(t *testing.T) {
	k := testKeys(t)
	good := netip.MustParseAddrPort("198.51.100.7:4000")
	w := offerJSON{Version: 1, Fingerprint: hex.EncodeToString(make([]byte, len(transport.Fingerprint{})))}
	w.Candidates = append(w.Candidates, unusableCandidates[:3]...)
	w.Candidates = append(w.Candidates, "not an address", good.String())
	w.Candidates = append(w.Candidates, unusableCandidates[3:]...)
	o, err := k.open(Receiver, sealJSON(t, k, Receiver, w))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Candidates) != 1 || o.Candidates[0] != good {
		t.Fatalf("candidates %v, want only %v", o.Candidates, good)
	}
}

// TestOpenRefusesTooManyCandidates: the cap is transport.MaxPeerCandidates,
// counted before any address is dropped.
func TestOpenRefusesTooManyCandidates(t *testing.T) {
	k := testKeys(t)
	w := offerJSON{Version: 1, Fingerprint: hex.EncodeToString(make([]byte, len(transport.Fingerprint{})))}
	for i := range transport.MaxPeerCandidates {
		w.Candidates = append(w.Candidates, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 4000).String())
	}
	if o, err := k.open(Receiver, sealJSON(t, k, Receiver, w)); err != nil || len(o.Candidates) != transport.MaxPeerCandidates {
		t.Fatalf("open with %d candidates: %d, %v", transport.MaxPeerCandidates, len(o.Candidates), err)
	}
	w.Candidates = append(w.Candidates, "0.0.0.0:1")
	if _, err := k.open(Receiver, sealJSON(t, k, Receiver, w)); !errors.Is(err, ErrTampered) {
		t.Fatalf("open with %d candidates: %v, want refused", len(w.Candidates), err)
	}
}

// TestSealLeavesOutUnusableCandidates: a side's own offer carries only
// usable addresses (unmapped), and no more than the peer accepts, so a
// machine with many addresses still pairs.
func TestSealLeavesOutUnusableCandidates(t *testing.T) {
	k := testKeys(t)
	good := netip.MustParseAddrPort("198.51.100.7:4000")
	o := testOffer(t, 1)
	o.Candidates = []netip.AddrPort{netip.MustParseAddrPort("[::ffff:198.51.100.7]:4000")}
	for _, c := range unusableCandidates {
		o.Candidates = append(o.Candidates, netip.MustParseAddrPort(c))
	}
	sealed, err := k.seal(Sender, o)
	if err != nil {
		t.Fatal(err)
	}
	if w := openJSON(t, k, Sender, sealed); len(w.Candidates) != 1 || w.Candidates[0] != good.String() {
		t.Fatalf("the offer carries %q, want only %v", w.Candidates, good)
	}

	o.Candidates = o.Candidates[:0]
	for i := range transport.MaxPeerCandidates + 8 {
		o.Candidates = append(o.Candidates, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 4000))
	}
	if sealed, err = k.seal(Sender, o); err != nil {
		t.Fatal(err)
	}
	got, err := k.open(Sender, sealed)
	if err != nil {
		t.Fatalf("the peer refuses an offer made from %d candidates: %v", len(o.Candidates), err)
	}
	if len(got.Candidates) != transport.MaxPeerCandidates || got.Candidates[0] != o.Candidates[0] {
		t.Fatalf("the peer got %d candidates starting %v, want the first %d", len(got.Candidates), got.Candidates[:1], transport.MaxPeerCandidates)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestOfferCarriesTCPCandidates: TCP candidates travel in the sealed offer
// under the same rules as UDP ones, and an offer without them (an older
// peer's) opens with none.
func TestOfferCarriesTCPCandidates(t *testing.T) {
	k := testKeys(t)
	o := testOffer(t, 1)
	tcp := netip.MustParseAddrPort("198.51.100.9:41000")
	o.TCPCandidates = []netip.AddrPort{tcp, netip.MustParseAddrPort("0.0.0.0:1")}
	sealed, err := k.seal(Sender, o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.open(Sender, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.TCPCandidates) != 1 || got.TCPCandidates[0] != tcp {
		t.Fatalf("TCP candidates %v, want [%v]", got.TCPCandidates, tcp)
	}
	w := openJSON(t, k, Sender, sealed)
	w.TCPCandidates = nil
	if got, err := k.open(Sender, sealJSON(t, k, Sender, w)); err != nil || len(got.TCPCandidates) != 0 {
		t.Fatalf("an offer without TCP candidates: %v, %v", got.TCPCandidates, err)
	}
}

// TestOfferCarriesTheSendersRelay: the sender's relay travels in its
// offer; a receiver's is never sent; a malformed one makes the offer
// tampered rather than something to dial.
func TestOfferCarriesTheSendersRelay(t *testing.T) {
	k := testKeys(t)
	o := testOffer(t, 1)
	o.Relay = "relay-1.example:7887"
	sealed, err := k.seal(Sender, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.open(Sender, sealed); err != nil || got.Relay != o.Relay {
		t.Fatalf("sender's relay %q, %v; want %q", got.Relay, err, o.Relay)
	}
	sealed, err = k.seal(Receiver, o)
	if err != nil {
		t.Fatal(err)
	}
	if w := openJSON(t, k, Receiver, sealed); w.Relay != "" {
		t.Fatalf("the receiver's offer carries a relay %q", w.Relay)
	}
	for _, bad := range []string{"relay-1.example", "relay-1.example:0", "[::1%eth0]:7887", "a b:1", "http://x:1"} {
		w := openJSON(t, k, Sender, mustSeal(t, k, o))
		w.Relay = bad
		if _, err := k.open(Sender, sealJSON(t, k, Sender, w)); !errors.Is(err, ErrTampered) {
			t.Errorf("relay %q: %v, want ErrTampered", bad, err)
		}
	}
}

func mustSeal(t *testing.T, k *pairKeys, o Offer) []byte {
	t.Helper()
	b, err := k.seal(Sender, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpenOffer: whatever plaintext a peer seals as its offer, opening it
// never panics, and an offer that opens carries at most
// transport.MaxPeerCandidates usable addresses in each list.
func FuzzOpenOffer(f *testing.F) {
	f.Add([]byte(`{"v":1,"fingerprint":"00","candidates":["1.2.3.4:5"],"tcp_candidates":["[::1]:0"]}`))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"session":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","fingerprint":"00","candidates":[],"relay":"relay.example:7887"}`))
	f.Add([]byte(`[]`))
	isk := bytes.Repeat([]byte{7}, 64)
	k, err := deriveKeys(isk, []byte("fuzz transcript"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		a, err := k.aead(Sender)
		if err != nil {
			t.Fatal(err)
		}
		o, err := k.open(Sender, a.Seal(nil, make([]byte, a.NonceSize()), plain, k.transcript))
		if err != nil {
			return
		}
		for _, list := range [][]netip.AddrPort{o.Candidates, o.TCPCandidates} {
			if len(list) > transport.MaxPeerCandidates {
				t.Fatalf("%d candidates", len(list))
			}
			for _, c := range list {
				if !transport.UsableCandidate(c) {
					t.Fatalf("unusable candidate %v", c)
				}
			}
		}
	})
}

// TestOfferCarriesCandidateTypes: candidate types travel in the offer for
// the addresses of either list; a type for an address not offered, or one
// a peer cannot know of its own addresses, is dropped (and then inferred).
func TestOfferCarriesCandidateTypes(t *testing.T) {
	k := testKeys(t)
	o := testOffer(t, 1)
	host, srflx, tcp := o.Candidates[0], netip.MustParseAddrPort("198.51.100.7:4000"), netip.MustParseAddrPort("198.51.100.7:41000")
	o.Candidates = append(o.Candidates, srflx)
	o.TCPCandidates = []netip.AddrPort{tcp}
	o.CandidateTypes = map[netip.AddrPort]transport.CandidateType{host: transport.CandidateHost, srflx: transport.CandidateServerReflexive, tcp: transport.CandidateServerReflexive}
	sealed, err := k.seal(Sender, o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.open(Sender, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.CandidateTypes) != 3 || got.CandidateTypes[host] != transport.CandidateHost || got.CandidateTypes[srflx] != transport.CandidateServerReflexive || got.CandidateTypes[tcp] != transport.CandidateServerReflexive {
		t.Fatalf("types %v", got.CandidateTypes)
	}
	w := openJSON(t, k, Sender, sealed)
	w.Types = map[string]string{host.String(): "relay", srflx.String(): "nonsense", "203.0.113.1:1": "host"}
	got, err = k.open(Sender, sealJSON(t, k, Sender, w))
	if err != nil || len(got.CandidateTypes) != 0 {
		t.Fatalf("hostile types kept: %v, %v", got.CandidateTypes, err)
	}
}
