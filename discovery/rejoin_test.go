package discovery

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/discovery/mailbox"
)

// switchboard is a TCP forwarder standing in for a name that leads to
// several servers: each new connection goes to whichever server it points
// at then.
type switchboard struct {
	ln     net.Listener
	target atomic.Value // string
	wg     sync.WaitGroup
}

func startSwitchboard(t *testing.T, target string) *switchboard {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sb := &switchboard{ln: ln}
	sb.target.Store(target)
	var conns sync.Map
	sb.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", sb.target.Load().(string))
			if err != nil {
				c.Close()
				continue
			}
			conns.Store(c, up)
			sb.wg.Go(func() { io.Copy(up, c); up.Close() })
			sb.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, v any) bool { k.(net.Conn).Close(); v.(net.Conn).Close(); return true })
		sb.wg.Wait()
	})
	return sb
}

// TestPairingFollowsADrainingServer: the sender waits on one of two
// servers sharing a store; that server drains (a rolling restart) and the
// name now leads to the other. The sender connects again under its side,
// claims its nameplate there, and the receiver pairs with the same code.
func TestPairingFollowsADrainingServer(t *testing.T) {
	store := mailbox.NewMemStore()
	var servers [2]*mailbox.Server
	var addrs [2]string
	for i := range servers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = mailbox.NewServer(mailbox.ServerConfig{Store: store, Logger: quietLogger()})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { servers[i].Serve(ctx, ln); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		addrs[i] = ln.Addr().String()
	}
	sb := startSwitchboard(t, addrs[0])
	cfg := Config{Rendezvous: sb.ln.Addr().String(), Logger: quietLogger(), NoLAN: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	inv, sch := hostAndPair(ctx, t, cfg, testOffer(t, 1111))

	sb.target.Store(addrs[1])
	if err := servers[0].Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	rr, err := Join(ctx, cfg, inv.Code(), testOffer(t, 2222))
	if err != nil {
		t.Fatalf("Join after the drain: %v", err)
	}
	s := <-sch
	if s.err != nil {
		t.Fatalf("the sender's Pair across the drain: %v", s.err)
	}
	if string(s.res.TransportKey) != string(rr.TransportKey) {
		t.Fatal("keys differ")
	}
}
