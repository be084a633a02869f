package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// benchSize is what each loopback benchmark moves.
const benchSize = 1 << 30

// BenchmarkLoopback1GiB moves 1 GiB file to file over loopback, all in one
// run: a plain TCP copy (the machine's practical ceiling), bare quic-go on
// UDP sockets, and the real ferry binary (send and receive processes with
// a rendezvous process) on random data, word-salad text, real text (Go
// sources), web-server access logs and a sparse-like disk image. Every variant
// reads the source file and writes and fsyncs the destination. Run with
//
//	go test -run XXX -bench Loopback1GiB -benchtime 1x ./internal/e2e/
func BenchmarkLoopback1GiB(b *testing.B) {
	dir := b.TempDir()
	random := filepath.Join(dir, "random.bin")
	text := filepath.Join(dir, "text.txt")
	code := filepath.Join(dir, "code.txt")
	logs := filepath.Join(dir, "logs.txt")
	sparse := filepath.Join(dir, "sparse.img")
	writeRandomFile(b, random, benchSize)
	writeTextLike(b, text, benchSize)
	writeSourceText(b, code, benchSize)
	writeLogLike(b, logs, benchSize)
	writeSparseLike(b, sparse, benchSize)

	b.Run("tcp-copy", func(b *testing.B) {
		b.SetBytes(benchSize)
		for range b.N {
			tcpCopy(b, random, filepath.Join(dir, "tcp.out"))
		}
	})
	b.Run("bare-quic", func(b *testing.B) {
		b.SetBytes(benchSize)
		for range b.N {
			quicCopy(b, random, filepath.Join(dir, "quic.out"))
		}
	})
	for _, src := range []string{random, text, code, logs, sparse} {
		b.Run("ferry-"+filepath.Base(src), func(b *testing.B) {
			addr, _, _ := startRendezvousProcess(b)
			b.SetBytes(benchSize)
			var sendRSS, recvRSS int64
			var wire int64
			for i := range b.N {
				out := filepath.Join(dir, fmt.Sprintf("ferry-out-%d", i))
				os.MkdirAll(out, 0o755)
				s, r, w := ferryCopy(b, addr, src, out)
				sendRSS, recvRSS, wire = max(sendRSS, s), max(recvRSS, r), w
				os.RemoveAll(out)
			}
			b.ReportMetric(float64(sendRSS)/1024, "send-peak-RSS-MB")
			b.ReportMetric(float64(recvRSS)/1024, "recv-peak-RSS-MB")
			b.ReportMetric(float64(wire)/float64(benchSize), "wire/size")
		})
	}
}

func writeRandomFile(tb testing.TB, path string, n int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(f, r, n); err != nil {
		tb.Fatal(err)
	}
}

// writeTextLike writes n bytes of word salad from a 1000-word vocabulary:
// compressible like prose or logs, not trivially so.
func writeTextLike(tb testing.TB, path string, n int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 1000)
	for i := range vocab {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		vocab[i] = string(w)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var written int64
	for written < n {
		w := vocab[rng.IntN(len(vocab))]
		sep := " "
		if rng.IntN(12) == 0 {
			sep = ".\n"
		}
		k, _ := bw.WriteString(w[:min(len(w), int(n-written))])
		written += int64(k)
		if written < n {
			k, _ = bw.WriteString(sep[:min(len(sep), int(n-written))])
			written += int64(k)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// writeSourceText writes n bytes of real text: the Go standard library's
// source files (from GOROOT), concatenated and repeated as needed.
func writeSourceText(tb testing.TB, path string, n int64) {
	tb.Helper()
	var srcs []string
	root := filepath.Join(runtime.GOROOT(), "src")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
			srcs = append(srcs, p)
		}
		return nil
	})
	if len(srcs) == 0 {
		tb.Skipf("no Go sources under %s for text-like data", root)
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	var written int64
	for written < n {
		for _, p := range srcs {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			b = b[:min(int64(len(b)), n-written)]
			bw.Write(b)
			if written += int64(len(b)); written == n {
				break
			}
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// writeLogLike writes n bytes of web-server access log, one request a line
// (the last line cut short at n): random client addresses, increasing
// timestamps, a handful of paths with random ids, and a few methods,
// statuses and user agents. Like real logs it compresses well but not
// trivially, and it is the same for every run.
func writeLogLike(tb testing.TB, path string, n int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	paths := []string{
		"/api/v1/users/%d/orders",
		"/api/v1/users/%d",
		"/api/v1/products/%d/reviews",
		"/api/v1/search?q=item%d&page=2",
		"/static/img/%d.jpg",
		"/index.html?ref=%d",
	}
	methods := []string{"GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"}
	statuses := []int{200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 304, 400, 404, 404, 500}
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
		"curl/8.5.0",
		"Go-http-client/1.1",
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	var written int64
	ts := int64(1760000000)
	for written < n {
		ts += int64(rng.IntN(3))
		p := fmt.Sprintf(paths[rng.IntN(len(paths))], rng.IntN(100000))
		line = fmt.Appendf(line[:0], "10.%d.%d.%d - - [%d] \"%s %s HTTP/1.1\" %d %d %.3f \"-\" \"%s\"\n",
			rng.IntN(256), rng.IntN(256), rng.IntN(256), ts,
			methods[rng.IntN(len(methods))], p, statuses[rng.IntN(len(statuses))],
			rng.IntN(200000), rng.Float64()*2, agents[rng.IntN(len(agents))])
		k, _ := bw.Write(line[:min(int64(len(line)), n-written)])
		written += int64(k)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// receiveTo copies r into a new file at path and fsyncs it.
func receiveTo(path string, r io.Reader) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(f, r)
	if err != nil {
		return n, err
	}
	return n, f.Sync()
}

func sendFrom(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func tcpCopy(b *testing.B, src, dst string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		errc <- sendFrom(src, c)
	}()
	c, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if n, err := receiveTo(dst, c); err != nil || n != benchSize {
		b.Fatalf("tcp copy: %d bytes, %v", n, err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	os.Remove(dst)
}

// quicCopy copies over quic-go directly on *net.UDPConn, with ferry's
// flow-control windows and quic-go's own path MTU discovery (ferry's
// sending side discovers too), one stream, both ends in this process.
func quicCopy(b *testing.B, src, dst string) {
	listen := func() *quic.Transport {
		u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		return &quic.Transport{Conn: u}
	}
	ta, tb := listen(), listen()
	defer ta.Close()
	defer tb.Close()
	qconf := &quic.Config{InitialStreamReceiveWindow: 8 << 20, MaxStreamReceiveWindow: 32 << 20, InitialConnectionReceiveWindow: 12 << 20, MaxConnectionReceiveWindow: 64 << 20}
	ln, err := tb.Listen(bareTLS(b), qconf)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		conn, err := ta.Dial(ctx, tb.Conn.LocalAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"bench"}}, qconf)
		if err != nil {
			errc <- err
			return
		}
		defer conn.CloseWithError(0, "")
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			errc <- err
			return
		}
		if err := sendFrom(src, s); err != nil {
			errc <- err
			return
		}
		s.Close()
		// Wait for the receiver to finish before closing the connection.
		_, _ = io.Copy(io.Discard, s)
		errc <- nil
	}()
	conn, err := ln.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	s, err := conn.AcceptStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if n, err := receiveTo(dst, s); err != nil || n != benchSize {
		b.Fatalf("quic copy: %d bytes, %v", n, err)
	}
	s.Close()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	conn.CloseWithError(0, "")
	os.Remove(dst)
}

// bareTLS is a server TLS config with a fresh self-signed certificate for
// the bare quic-go baseline (certificate checking is not what is measured).
func bareTLS(b *testing.B) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"bench"}}
}

// ferryCopy runs the real send and receive processes and returns their
// peak RSS (KiB) and the wire bytes the sender reported.
func ferryCopy(b *testing.B, rendezvous, src, out string) (sendKiB, recvKiB, wire int64) {
	send := startFerry(b, rendezvous, "send", src)
	c := send.waitEvent(b, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	recv := startFerry(b, rendezvous, "receive", "--yes", "--out", out, c.Code)
	if code := recv.wait(b); code != 0 {
		b.Fatalf("receive exited %d: %s", code, recv.stderr.String())
	}
	if code := send.wait(b); code != 0 {
		b.Fatalf("send exited %d: %s", code, send.stderr.String())
	}
	d, _ := send.find("done")
	return maxRSS(send), maxRSS(recv), d.WireBytes
}
