package transfer

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ferry/transport"
)

// loopbackConns connects two transport sockets on 127.0.0.1.
func loopbackConns(tb testing.TB) (*transport.Conn, *transport.Conn) {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func() *transport.Socket {
		s, err := transport.NewSocket(transport.Config{ListenAddr: "127.0.0.1:0", Logger: quiet, NetworkPollInterval: -1})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	key := make([]byte, 32)
	rand.Read(key)
	ca, _ := transport.NewCertificate()
	cb, _ := transport.NewCertificate()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type res struct {
		c   *transport.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := b.Connect(ctx, transport.Peer{Role: transport.RoleAcceptor, Key: key, Certificate: cb, PeerFingerprint: ca.Fingerprint, Candidates: []netip.AddrPort{a.LocalAddr()}})
		ch <- res{c, err}
	}()
	c1, err := a.Connect(ctx, transport.Peer{Role: transport.RoleDialer, Key: key, Certificate: ca, PeerFingerprint: cb.Fingerprint, Candidates: []netip.AddrPort{b.LocalAddr()}})
	if err != nil {
		tb.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		tb.Fatal(r.err)
	}
	tb.Cleanup(func() { c1.Close(); r.c.Close() })
	return c1, r.c
}

// transferOnce sends paths from one connection to the other into out.
func transferOnce(tb testing.TB, sc, rc *transport.Conn, paths []string, out string, chunk int64, streams int) (Stats, Stats) {
	tb.Helper()
	m, src, _, err := BuildManifest(context.Background(), paths, chunk, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type res struct {
		st  Stats
		err error
	}
	ch := make(chan res, 1)
	go func() {
		st, err := Send(ctx, sc, SendOptions{Manifest: m, Sources: src, Streams: streams})
		ch <- res{st, err}
	}()
	rst, err := Receive(ctx, rc, ReceiveOptions{OutDir: out})
	if err != nil {
		tb.Fatalf("receive: %v", err)
	}
	s := <-ch
	if s.err != nil {
		tb.Fatalf("send: %v", s.err)
	}
	return s.st, rst
}

func writeRandomFile(tb testing.TB, path string, n int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkEngineRandom moves a 256 MiB random file over loopback QUIC.
func BenchmarkEngineRandom(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "rand.bin")
	writeRandomFile(b, src, 256<<20)
	sc, rc := loopbackConns(b)
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, "out", string(rune('a'+i)))
		os.MkdirAll(out, 0o755)
		transferOnce(b, sc, rc, []string{src}, out, DefaultChunkSize, DefaultStreams)
	}
}

// BenchmarkEngineText moves 256 MiB of word salad (compresses about 3:1).
func BenchmarkEngineText(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "text.txt")
	f, _ := os.Create(src)
	words := []string{"ferry ", "carries ", "files ", "across ", "the ", "water ", "quickly.\n", "resumable ", "chunks ", "verified "}
	var seed uint32 = 1
	buf := make([]byte, 0, 1<<20)
	for written := 0; written < 256<<20; {
		buf = buf[:0]
		for len(buf) < 1<<20-16 {
			seed = seed*1664525 + 1013904223
			buf = append(buf, words[seed>>28%uint32(len(words))]...)
		}
		buf = buf[:min(len(buf), 256<<20-written)]
		f.Write(buf)
		written += len(buf)
	}
	f.Close()
	st, _ := os.Stat(src)
	sc, rc := loopbackConns(b)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, "out", string(rune('a'+i)))
		os.MkdirAll(out, 0o755)
		transferOnce(b, sc, rc, []string{src}, out, DefaultChunkSize, DefaultStreams)
	}
}

// BenchmarkEngineShape measures chunk size against stream count on a
// 256 MiB random file, to choose DefaultChunkSize and DefaultStreams.
func BenchmarkEngineShape(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "rand.bin")
	writeRandomFile(b, src, 256<<20)
	sc, rc := loopbackConns(b)
	n := 0
	for _, chunk := range []int64{256 << 10, 1 << 20, 4 << 20} {
		for _, streams := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("chunk=%dKiB/streams=%d", chunk>>10, streams), func(b *testing.B) {
				b.SetBytes(256 << 20)
				for range b.N {
					n++
					out := filepath.Join(dir, fmt.Sprint("out", n))
					os.MkdirAll(out, 0o755)
					transferOnce(b, sc, rc, []string{src}, out, chunk, streams)
					os.RemoveAll(out)
				}
			})
		}
	}
}
