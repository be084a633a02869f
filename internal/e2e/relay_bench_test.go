package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/fdlimit"
	"ferry/transport"
)

// tcpProxyEnv makes the test binary a plain TCP proxy (see runTCPProxy).
const tcpProxyEnv = "FERRY_E2E_TCP_PROXY"

// runTCPProxy is the yardstick for the relay: it listens on 127.0.0.1:0,
// prints its address, pairs connections by the first 32 bytes each sends
// (as the relay pairs by token) and then copies bytes both ways with
// io.Copy, nothing else: no framing, no limits, no accounting.
func runTCPProxy() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "proxy listening tcp=%s\n", ln.Addr())
	var mu sync.Mutex
	waiting := map[string]net.Conn{}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 0
		}
		go func() {
			token := make([]byte, 32)
			if _, err := io.ReadFull(c, token); err != nil {
				c.Close()
				return
			}
			mu.Lock()
			peer, ok := waiting[string(token)]
			if !ok {
				waiting[string(token)] = c
				mu.Unlock()
				return
			}
			delete(waiting, string(token))
			mu.Unlock()
			go func() { io.Copy(peer, c); peer.Close() }()
			io.Copy(c, peer)
			c.Close()
		}()
	}
}

// relayPair is one relayed transfer's two sides.
type relayPair struct{ a, b net.Conn }

// BenchmarkRelayConcurrent relays 200 transfers at once through one `ferry
// rendezvous` process on loopback (per-address and rate limits lifted,
// since every client is 127.0.0.1), each pushing its share of 1 GiB in
// 1400-byte frames one way, and then the same through a plain TCP proxy
// process: aggregate MB/s, the server's CPU seconds per GB relayed and its
// peak RSS.
func BenchmarkRelayConcurrent(b *testing.B) {
	const pairs = 200
	perPair := int64(1<<30) / pairs
	if testing.Short() {
		perPair = 1 << 20
	}
	fdlimit.Raise(b, 4*pairs+1000)
	for _, server := range []string{"ferry-relay", "tcp-proxy"} {
		b.Run(server, func(b *testing.B) {
			var addr string
			var cmd *exec.Cmd
			if server == "ferry-relay" {
				addr, cmd, _ = startRendezvousProcess(b, "--relay-max-sessions-per-ip", "-1", "--relay-rate", "-1")
			} else {
				cmd = exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(), tcpProxyEnv+"=1")
				addr, _ = startRendezvousCmd(b, cmd, regexp.MustCompile(`tcp=(127\.0\.0\.1:\d+)`))
			}
			b.SetBytes(perPair * pairs)
			cpu0 := procCPU(b, cmd.Process.Pid)
			start := time.Now()
			for range b.N {
				relayTransfers(b, addr, server == "ferry-relay", pairs, perPair)
			}
			elapsed := time.Since(start)
			cpu := procCPU(b, cmd.Process.Pid) - cpu0
			gb := float64(perPair*pairs*int64(b.N)) / 1e9
			b.ReportMetric(gb*1000/elapsed.Seconds(), "aggregate-MB/s")
			b.ReportMetric(cpu.Seconds()/gb, "server-CPU-s/GB")
			if hwm, err := peakRSS(cmd.Process.Pid); err == nil {
				b.ReportMetric(float64(hwm)/1024, "server-peak-RSS-MB")
			}
		})
	}
}

// relayTransfers pairs n transfers at the server and pushes perPair bytes
// through each, one way, all at once.
func relayTransfers(b *testing.B, addr string, framed bool, n int, perPair int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ps := make([]relayPair, n)
	for i := range ps {
		var token [transport.RelayTokenLen]byte
		_, _ = rand.Read(token[:])
		ps[i] = relayPair{a: joinRelayRaw(b, ctx, addr, token, transport.RoleDialer, framed), b: joinRelayRaw(b, ctx, addr, token, transport.RoleAcceptor, framed)}
	}
	if framed {
		for _, p := range ps {
			waitPaired(b, p.a)
			waitPaired(b, p.b)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for _, p := range ps {
		wg.Go(func() {
			defer p.a.Close()
			w := bufio.NewWriterSize(p.a, 64<<10)
			frame := make([]byte, 1400)
			for sent := int64(0); sent < perPair; sent += int64(len(frame)) {
				if err := transport.WriteRelayFrame(w, frame[:min(int64(len(frame)), perPair-sent)]); err != nil {
					errs <- err
					return
				}
			}
			if err := w.Flush(); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			defer p.b.Close()
			r := bufio.NewReaderSize(p.b, 64<<10)
			var got int64
			buf := make([]byte, transport.MaxRelayFrame)
			for got < perPair {
				k, err := transport.ReadRelayFrame(r, buf)
				if err != nil {
					errs <- fmt.Errorf("after %d of %d bytes: %w", got, perPair, err)
					return
				}
				got += int64(k)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// joinRelayRaw connects one side: the relay's hello, or the proxy's token.
func joinRelayRaw(b *testing.B, ctx context.Context, addr string, token [transport.RelayTokenLen]byte, side transport.Role, framed bool) net.Conn {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	hello := token[:]
	if framed {
		hello = transport.AppendRelayHello(nil, token, side)
	}
	if _, err := c.Write(hello); err != nil {
		b.Fatal(err)
	}
	return c
}

// waitPaired reads the relay's status bytes up to RelayPaired.
func waitPaired(b *testing.B, c net.Conn) {
	var st [1]byte
	for {
		if _, err := io.ReadFull(c, st[:]); err != nil {
			b.Fatal(err)
		}
		switch transport.RelayStatus(st[0]) {
		case transport.RelayWaiting:
			continue
		case transport.RelayPaired:
			return
		default:
			b.Fatalf("relay refused: %v", transport.RelayStatus(st[0]))
		}
	}
}

// procCPU is a process's user+system CPU time so far (Linux).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}
