package transport

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// benchBytes is what each benchmark iteration moves over one stream.
const benchBytes = 256 << 20

// sendAndDrain writes benchBytes on a new stream of from and reads them
// from the peer's accepted stream.
func sendAndDrain(b *testing.B, open func(context.Context) (*quic.Stream, error), accept func(context.Context) (*quic.Stream, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	chunk := make([]byte, 64<<10)
	done := make(chan error, 1)
	go func() {
		s, err := open(ctx)
		if err != nil {
			done <- err
			return
		}
		for sent := 0; sent < benchBytes; sent += len(chunk) {
			if _, err := s.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- s.Close()
	}()
	s, err := accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, s)
	if err != nil || n != benchBytes {
		b.Fatalf("received %d bytes (want %d): %v", n, benchBytes, err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMagicSocket moves 256 MiB per iteration over ferry's magic
// socket on loopback, one stream.
func BenchmarkMagicSocket(b *testing.B) {
	a, c := newLoopbackSocket(b), newLoopbackSocket(b)
	ca, cc := connectPair(b, a, c, []netip.AddrPort{a.LocalAddr()}, []netip.AddrPort{c.LocalAddr()})
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for range b.N {
		sendAndDrain(b, ca.OpenStream, cc.AcceptStream)
	}
}

// BenchmarkBareQUIC moves the same over quic-go on plain *net.UDPConn
// sockets with the same quic-go settings: the ceiling for the magic socket.
func BenchmarkBareQUIC(b *testing.B) {
	spec := newPairSpec(b)
	qconf := fastConfig().withDefaults().quicConfig(RoleDialer)
	listen := func() *quic.Transport {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		tr := &quic.Transport{Conn: u}
		b.Cleanup(func() { tr.Close(); u.Close() })
		return tr
	}
	trA, trB := listen(), listen()
	ln, err := trB.Listen(pinnedTLS(spec.certB, spec.certA.Fingerprint, RoleAcceptor), qconf)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	accepted := make(chan *quic.Conn, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			b.Error(err)
		}
		accepted <- c
	}()
	var clientTLS *tls.Config = pinnedTLS(spec.certA, spec.certB.Fingerprint, RoleDialer)
	ca, err := trA.Dial(ctx, trB.Conn.LocalAddr(), clientTLS, qconf)
	if err != nil {
		b.Fatal(err)
	}
	cb := <-accepted
	b.Cleanup(func() { ca.CloseWithError(0, ""); cb.CloseWithError(0, "") })
	b.SetBytes(benchBytes)
	b.ResetTimer()
	for range b.N {
		sendAndDrain(b, ca.OpenStreamSync, cb.AcceptStream)
	}
}
