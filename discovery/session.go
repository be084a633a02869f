package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"ferry/discovery/code"
	"ferry/discovery/mailbox"
)

// Config says where pairing finds the other side.
type Config struct {
	// Rendezvous is the mailbox server, "host:port". Empty means pair on the
	// local network only, with the sender's embedded mailbox.
	Rendezvous string
	// LANGroup is the multicast group of LAN beacons; default DefaultLANGroup.
	LANGroup netip.AddrPort
	// LANWait bounds how long a receiver listens for a LAN beacon when the
	// rendezvous server does not know the code; default 3 s.
	LANWait time.Duration
	// NoLAN turns LAN pairing off: no beacon is sent or listened for, and
	// pairing needs the rendezvous server.
	NoLAN bool
	// Logger receives structured logs (never codes or keys); default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if !c.LANGroup.IsValid() {
		c.LANGroup = DefaultLANGroup
	}
	if c.LANWait == 0 {
		c.LANWait = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Invitation is the sender's side of pairing while it waits for the
// receiver: it holds a claimed nameplate, on the rendezvous server or on an
// embedded LAN mailbox it announces.
type Invitation struct {
	cfg    Config
	client *mailbox.Client
	code   code.Code
	lan    bool
	port   uint16             // the embedded mailbox's TCP port
	stop   context.CancelFunc // stops the embedded mailbox and the beacon
	done   chan struct{}      // closed when the embedded mailbox has stopped
	wg     sync.WaitGroup     // the beacon goroutine
}

// Host starts pairing as the sender: it allocates and claims a nameplate on
// the rendezvous server or, when none is configured or it cannot be
// reached, on an embedded mailbox announced on the local network. Show
// Code() to the user, then call Pair.
func Host(ctx context.Context, cfg Config) (*Invitation, error) {
	cfg = cfg.withDefaults()
	inv := &Invitation{cfg: cfg, done: make(chan struct{})}
	if cfg.Rendezvous != "" {
		c, err := mailbox.Dial(ctx, cfg.Rendezvous)
		if err == nil {
			inv.client = c
		} else {
			cfg.Logger.Warn("rendezvous server unreachable, pairing on the local network only", "server", cfg.Rendezvous, "err", err)
		}
	}
	if inv.client == nil {
		if cfg.NoLAN {
			return nil, fmt.Errorf("discovery: rendezvous server %q unreachable and LAN pairing is off", cfg.Rendezvous)
		}
		if err := inv.startLAN(ctx); err != nil {
			return nil, err
		}
	} else {
		close(inv.done)
	}
	var np string
	err := retryStore(ctx, func() (err error) {
		np, err = inv.client.Allocate(ctx)
		return err
	})
	if err == nil {
		err = retryStore(ctx, func() error { return inv.client.Claim(ctx, np) })
	}
	if err == nil {
		inv.code, err = code.New(np)
	}
	if err != nil {
		inv.Close()
		return nil, fmt.Errorf("discovery: get a code: %w", err)
	}
	if inv.lan {
		bctx, cancel := context.WithCancel(context.Background())
		old := inv.stop
		inv.stop = func() { cancel(); old() }
		inv.wg.Go(func() {
			if err := Announce(bctx, cfg.LANGroup, Beacon{Nameplate: np, Port: inv.port}); err != nil {
				cfg.Logger.Warn("LAN beacon failed", "err", err)
			}
		})
	}
	return inv, nil
}

// startLAN runs an in-process mailbox on an ephemeral TCP port of every
// interface and connects to it.
func (inv *Invitation) startLAN(ctx context.Context) error {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return fmt.Errorf("discovery: start the local mailbox: %w", err)
	}
	srv := mailbox.NewServer(mailbox.ServerConfig{Logger: inv.cfg.Logger.With("component", "lan-mailbox")})
	sctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(inv.done)
		_ = srv.Serve(sctx, ln)
	}()
	inv.stop = cancel
	inv.lan = true
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := mailbox.Dial(ctx, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		cancel()
		<-inv.done
		return fmt.Errorf("discovery: connect to the local mailbox: %w", err)
	}
	inv.client = c
	inv.port = uint16(port)
	return nil
}

// Code is the share code to show the user.
func (inv *Invitation) Code() code.Code { return inv.code }

// LAN reports whether pairing runs on the local network without a server.
func (inv *Invitation) LAN() bool { return inv.lan }

// Pair waits for the receiver and runs the PAKE and the offer exchange.
func (inv *Invitation) Pair(ctx context.Context, own Offer) (*Result, error) {
	if own.Relay == "" {
		own.Relay = inv.client.Relay()
	}
	rendezvous := inv.cfg.Rendezvous
	if inv.lan {
		rendezvous = ""
	}
	mb := &rejoiningMailbox{c: inv.client, addr: rendezvous, nameplate: inv.code.Nameplate}
	res, err := runPAKE(ctx, mb, Sender, inv.code, own)
	inv.client = mb.c // Close uses the connection that holds the claim now
	if err != nil {
		return nil, err
	}
	_ = mb.Release(ctx)
	_ = mb.Close(ctx, mailbox.Happy)
	return res, nil
}

// Close gives up the nameplate and stops the embedded mailbox, if any.
func (inv *Invitation) Close() {
	if inv.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = inv.client.Close(ctx, mailbox.Lonely)
		cancel()
	}
	if inv.stop != nil {
		inv.stop()
	}
	inv.wg.Wait()
	<-inv.done
}

// Join pairs as the receiver with the code the user typed: through the
// rendezvous server if one is configured and knows the code, else through a
// sender announcing it on the local network.
func Join(ctx context.Context, cfg Config, c code.Code, own Offer) (*Result, error) {
	cfg = cfg.withDefaults()
	var serverErr error
	if cfg.Rendezvous != "" {
		mb, err := mailbox.Dial(ctx, cfg.Rendezvous)
		if err == nil {
			err = retryStore(ctx, func() error { return mb.Claim(ctx, c.Nameplate) })
			if err == nil {
				return joinOver(ctx, mb, cfg.Rendezvous, c, own)
			}
			_ = mb.Close(ctx, mailbox.Lonely)
		}
		serverErr = err
		if cfg.NoLAN {
			return nil, fmt.Errorf("discovery: pair through %s: %w", cfg.Rendezvous, err)
		}
		cfg.Logger.Info("rendezvous server did not pair, looking on the local network", "server", cfg.Rendezvous, "err", err)
	} else if cfg.NoLAN {
		return nil, errors.New("discovery: no rendezvous server configured and LAN pairing is off")
	}
	wait := ctx
	if cfg.Rendezvous != "" {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, cfg.LANWait)
		defer cancel()
	}
	addr, err := FindSender(wait, cfg.LANGroup, c.Nameplate)
	if err != nil {
		if serverErr != nil {
			return nil, fmt.Errorf("%w; rendezvous server: %w", err, serverErr)
		}
		return nil, err
	}
	mb, err := mailbox.Dial(ctx, addr.String())
	if err != nil {
		return nil, fmt.Errorf("discovery: connect to the sender's mailbox at %v: %w", addr, err)
	}
	if err := mb.Claim(ctx, c.Nameplate); err != nil {
		_ = mb.Close(ctx, mailbox.Lonely)
		return nil, fmt.Errorf("discovery: claim the code on the local network: %w", err)
	}
	return joinOver(ctx, mb, "", c, own)
}

// joinOver runs the receiver's pairing over client, which claimed c's
// nameplate at rendezvous ("" for a sender's LAN mailbox, never rejoined).
func joinOver(ctx context.Context, client *mailbox.Client, rendezvous string, c code.Code, own Offer) (*Result, error) {
	mb := &rejoiningMailbox{c: client, addr: rendezvous, nameplate: c.Nameplate}
	res, err := runPAKE(ctx, mb, Receiver, c, own)
	if err != nil {
		if !errors.Is(err, ErrCodeMismatch) {
			_ = mb.Close(ctx, mailbox.Errory)
		}
		return nil, err
	}
	if mb.c.Relay() == "" {
		// Only a server that itself advertises a relay is one of several
		// sharing a store: elsewhere the relay is the server this side
		// chose, whatever the sender's offer names.
		res.Relay = ""
	}
	_ = mb.Release(ctx)
	_ = mb.Close(ctx, mailbox.Happy)
	return res, nil
}
