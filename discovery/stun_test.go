package discovery

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v2"
)

// fakeSTUNSocket is the STUN client's edge: it records what the client
// sends and lets the test play every answer, from any source.
type fakeSTUNSocket struct {
	mu   sync.Mutex
	h    func(msg []byte, from netip.AddrPort)
	sent chan fakeSTUNWrite
}

type fakeSTUNWrite struct {
	msg []byte
	to  netip.AddrPort
}

func newFakeSTUNSocket() *fakeSTUNSocket {
	return &fakeSTUNSocket{sent: make(chan fakeSTUNWrite, 16)}
}

func (f *fakeSTUNSocket) WriteSTUN(msg []byte, to netip.AddrPort) error {
	select {
	case f.sent <- fakeSTUNWrite{bytes.Clone(msg), to}:
	default: // the test reads the first request only
	}
	return nil
}

func (f *fakeSTUNSocket) SetSTUNHandler(h func(msg []byte, from netip.AddrPort)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.h = h
}

// answer plays a Binding success for the transaction of req, claiming
// mapped, arriving from from.
func (f *fakeSTUNSocket) answer(t *testing.T, req []byte, mapped, from netip.AddrPort) {
	t.Helper()
	var m stun.Message
	if err := stun.Decode(req, &m); err != nil {
		t.Fatal(err)
	}
	resp := stun.MustBuild(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())})
	f.mu.Lock()
	h := f.h
	f.mu.Unlock()
	h(resp.Raw, from)
}

// TestSTUNClientTakesAnswersOnlyFromTheServerAsked: answers carrying the
// query's transaction ID but coming from another address (another host, or
// the server's host on another port) are ignored; the query completes with
// the server's own answer, also when the server's address is spelled
// IPv4-mapped on one side only. With only impostors answering, the query
// times out.
func TestSTUNClientTakesAnswersOnlyFromTheServerAsked(t *testing.T) {
	server := netip.MustParseAddrPort("192.0.2.10:3478")
	mappedServer := netip.MustParseAddrPort("[::ffff:192.0.2.10]:3478")
	impostors := []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.66:3478"),
		netip.MustParseAddrPort("192.0.2.10:3479"),
		netip.MustParseAddrPort("[2001:db8::10]:3478"),
	}
	planted := netip.MustParseAddrPort("203.0.113.66:666")
	honest := netip.MustParseAddrPort("198.51.100.5:5000")

	for _, tc := range []struct {
		name     string
		ask      netip.AddrPort // the server as given to Query
		answerer netip.AddrPort // the server's address as the socket reports it
	}{
		{"plain", server, server},
		{"answer from mapped address", server, mappedServer},
		{"asked at mapped address", mappedServer, server},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := newFakeSTUNSocket()
			c := NewSTUNClient(sock)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			type result struct {
				addr netip.AddrPort
				err  error
			}
			done := make(chan result, 1)
			go func() {
				a, err := c.Query(ctx, tc.ask)
				done <- result{a, err}
			}()
			w := <-sock.sent
			if w.to != tc.ask {
				t.Fatalf("request sent to %v, want %v", w.to, tc.ask)
			}
			for _, from := range impostors {
				sock.answer(t, w.msg, planted, from)
			}
			sock.answer(t, w.msg, honest, tc.answerer)
			r := <-done
			if r.err != nil || r.addr != honest {
				t.Fatalf("Query = %v, %v; want the server's answer %v", r.addr, r.err, honest)
			}
		})
	}

	t.Run("only impostors answer", func(t *testing.T) {
		sock := newFakeSTUNSocket()
		c := NewSTUNClient(sock)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		var got netip.AddrPort
		go func() {
			var err error
			got, err = c.Query(ctx, server)
			done <- err
		}()
		w := <-sock.sent
		for _, from := range impostors {
			sock.answer(t, w.msg, planted, from)
		}
		if err := <-done; !errors.Is(err, ErrSTUNTimeout) {
			t.Fatalf("Query = %v, %v; want ErrSTUNTimeout", got, err)
		}
	})
}
