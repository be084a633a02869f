package discovery

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"ferry/discovery/code"
	"ferry/discovery/mailbox"
	"ferry/transport"
)

// startRendezvous runs a real mailbox server (TCP and STUN) on loopback.
func startRendezvous(t *testing.T) string {
	t.Helper()
	return startRendezvousWith(t, mailbox.ServerConfig{})
}

// startRendezvousWith is startRendezvous with the caller's configuration.
func startRendezvousWith(t *testing.T, cfg mailbox.ServerConfig) string {
	t.Helper()
	ln, pc, err := mailbox.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Logger = quietLogger()
	srv := mailbox.NewServer(cfg)
	done := make(chan struct{}, 2)
	go func() { srv.Serve(ctx, ln); done <- struct{}{} }()
	go func() { srv.ServeSTUN(ctx, pc); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return ln.Addr().String()
}

// hostAndPair hosts with cfg and runs the sender's Pair with own in the
// background; the outcome arrives on the channel.
func hostAndPair(ctx context.Context, t *testing.T, cfg Config, own Offer) (*Invitation, <-chan pairOutcome) {
	t.Helper()
	inv, err := Host(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inv.Close)
	sch := make(chan pairOutcome, 1)
	go func() {
		r, err := inv.Pair(ctx, own)
		sch <- pairOutcome{r, err}
	}()
	return inv, sch
}

func TestHostJoinThroughRendezvous(t *testing.T) {
	cfg := Config{Rendezvous: startRendezvous(t), Logger: quietLogger(), NoLAN: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, err := Host(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	if inv.LAN() {
		t.Fatal("paired on the LAN although the rendezvous server is up")
	}
	so, ro := testOffer(t, 1111), testOffer(t, 2222)
	sch := make(chan pairOutcome, 1)
	go func() {
		r, err := inv.Pair(ctx, so)
		sch <- pairOutcome{r, err}
	}()
	// The receiver types the code as a person would.
	typed, err := code.Parse(" " + inv.Code().String() + " ")
	if err != nil {
		t.Fatal(err)
	}
	rr, err := Join(ctx, cfg, typed, ro)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	s := <-sch
	if s.err != nil {
		t.Fatalf("Pair: %v", s.err)
	}
	if string(s.res.TransportKey) != string(rr.TransportKey) || s.res.PeerFingerprint != ro.Fingerprint || rr.PeerFingerprint != so.Fingerprint {
		t.Fatal("keys or fingerprints differ")
	}
}

// TestWrongCodeThroughRendezvous: both sides hear "code mismatch", and the
// burned nameplate cannot be guessed again, even with the right words.
func TestWrongCodeThroughRendezvous(t *testing.T) {
	// NoLAN: outside a test namespace nothing may listen for multicast (a
	// group join sends IGMP out of the machine's real interfaces).
	cfg := Config{Rendezvous: startRendezvous(t), Logger: quietLogger(), NoLAN: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv, err := Host(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	sch := make(chan error, 1)
	go func() {
		_, err := inv.Pair(ctx, testOffer(t, 1))
		sch <- err
	}()
	wrong := inv.Code()
	if wrong.Words[1] == "adroitness" {
		wrong.Words[1] = "adviser"
	} else {
		wrong.Words[1] = "adroitness"
	}
	_, err = Join(ctx, cfg, wrong, testOffer(t, 2))
	if !errors.Is(err, ErrCodeMismatch) {
		t.Fatalf("receiver: %v, want code mismatch", err)
	}
	if err := <-sch; !errors.Is(err, ErrCodeMismatch) {
		t.Fatalf("sender: %v, want code mismatch", err)
	}
	_, err = Join(ctx, cfg, inv.Code(), testOffer(t, 3))
	if !errors.Is(err, mailbox.ErrNoSuchNameplate) {
		t.Fatalf("second guess: %v, want no such nameplate", err)
	}
}

// TestSTUNThroughRendezvous asks the rendezvous server's STUN port for the
// transport socket's reflexive address, through that very socket.
func TestSTUNThroughRendezvous(t *testing.T) {
	server, err := netip.ParseAddrPort(startRendezvous(t))
	if err != nil {
		t.Fatal(err)
	}
	sock, err := transport.NewSocket(transport.Config{ListenAddr: "127.0.0.1:0", Logger: quietLogger(), NetworkPollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	c := NewSTUNClient(sock)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.Reflexive(ctx, []string{server.String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != sock.LocalAddr() {
		t.Fatalf("reflexive %v, want the socket's own %v on loopback", got, sock.LocalAddr())
	}
	// A server that never answers times out cleanly.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := c.Query(short, netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, ErrSTUNTimeout) {
		t.Fatalf("silent server: %v, want ErrSTUNTimeout", err)
	}
}

// TestRelayOfTheSendersServer: with several servers sharing one store,
// each advertising its own address, the pair must relay through one of
// them: both sides get the sender's server's. A receiver whose own server
// advertises nothing (a single server, whatever the offer says) keeps its
// own rendezvous address.
func TestRelayOfTheSendersServer(t *testing.T) {
	store := mailbox.NewMemStore()
	const relay1, relay2 = "relay-1.example:7887", "relay-2.example:7887"
	srv1 := startRendezvousWith(t, mailbox.ServerConfig{Store: store, Advertise: relay1})
	srv2 := startRendezvousWith(t, mailbox.ServerConfig{Store: store, Advertise: relay2})
	plain := startRendezvousWith(t, mailbox.ServerConfig{Store: store})

	for _, tc := range []struct {
		name               string
		sendVia, recvVia   string
		wantSend, wantRecv string
	}{
		{"sender and receiver on different servers", srv1, srv2, relay1, relay1},
		{"receiver's server advertises nothing", srv1, plain, relay1, ""},
		{"sender's server advertises nothing", plain, srv2, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			inv, sch := hostAndPair(ctx, t, Config{Rendezvous: tc.sendVia, Logger: quietLogger(), NoLAN: true}, testOffer(t, 1111))
			rr, err := Join(ctx, Config{Rendezvous: tc.recvVia, Logger: quietLogger(), NoLAN: true}, inv.Code(), testOffer(t, 2222))
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			sr := <-sch
			if sr.err != nil {
				t.Fatalf("Pair: %v", sr.err)
			}
			if sr.res.Relay != tc.wantSend || rr.Relay != tc.wantRecv {
				t.Fatalf("relays: sender %q, receiver %q; want %q, %q", sr.res.Relay, rr.Relay, tc.wantSend, tc.wantRecv)
			}
		})
	}
}
