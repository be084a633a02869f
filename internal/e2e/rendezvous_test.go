package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"ferry/discovery"
	"ferry/internal/fdlimit"
	"ferry/transport"
)

// ferryBinary is the real binary, built once by TestMain: every test here
// runs it as a separate process.
var ferryBinary string

// The binary's exit statuses (a public contract).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func TestMain(m *testing.M) {
	if os.Getenv(tcpProxyEnv) != "" {
		// This process is the plain TCP proxy a benchmark compares the relay with.
		os.Exit(runTCPProxy())
	}
	if os.Getenv(peersTCPEnv) != "" {
		// This process is one side of the side-by-side benchmark's plain TCP copy.
		os.Exit(runPeersTCP())
	}
	if os.Getenv(pairClientEnv) != "" {
		// This process is one of a load benchmark's pairing clients.
		os.Exit(runPairClient())
	}
	dir, err := os.MkdirTemp("", "ferry-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ferryBinary = filepath.Join(dir, "ferry")
	// The same flags as any other build of the binary, so the (slow, cgo)
	// desktop toolkit compiles once and is reused from the build cache.
	build := exec.Command("go", "build", "-o", ferryBinary, "ferry")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var listeningRE = regexp.MustCompile(`tcp=(127\.0\.0\.1:\d+)`)

// startRendezvousProcess runs `ferry rendezvous` on a free loopback port and
// returns its address and process.
func startRendezvousProcess(t testing.TB, extra ...string) (string, *exec.Cmd, *safeBuffer) {
	t.Helper()
	cmd := exec.Command(ferryBinary, append([]string{"rendezvous", "--listen", "127.0.0.1:0"}, extra...)...)
	addr, logs := startRendezvousCmd(t, cmd, listeningRE)
	return addr, cmd, logs
}

// startRendezvousCmd starts cmd, a `ferry rendezvous` the caller built (on
// loopback, or inside a network namespace), kills it at cleanup, and
// returns the address in the first group of listening, matched against
// its "mailbox server listening" log line, and its logs so far and to come.
func startRendezvousCmd(t testing.TB, cmd *exec.Cmd, listening *regexp.Regexp) (string, *safeBuffer) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &safeBuffer{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return a, logs
	case <-time.After(10 * time.Second):
		t.Fatalf("rendezvous server did not report its address:\n%s", logs.String())
	}
	return "", nil
}

type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pairOnce pairs a sender and a receiver through the server at addr and
// checks they agree; it returns the code's words.
func pairOnce(ctx context.Context, addr string) ([2]string, error) {
	return pairAcross(ctx, addr, addr)
}

// pairAcross is pairOnce with the sender on the server at sendAddr and the
// receiver on the one at recvAddr (servers sharing a store).
func pairAcross(ctx context.Context, sendAddr, recvAddr string) ([2]string, error) {
	cfg := discovery.Config{Rendezvous: sendAddr, NoLAN: true, Logger: quietLogger()}
	var words [2]string
	inv, err := discovery.Host(ctx, cfg)
	if err != nil {
		return words, fmt.Errorf("host: %w", err)
	}
	defer inv.Close()
	words = inv.Code().Words
	var fpS, fpR transport.Fingerprint
	fpS[0], fpR[0] = 1, 2
	errc := make(chan error, 1)
	var sres *discovery.Result
	go func() {
		var err error
		sres, err = inv.Pair(ctx, discovery.Offer{SessionID: uuid.New(), Fingerprint: fpS})
		errc <- err
	}()
	cfg.Rendezvous = recvAddr
	rres, err := discovery.Join(ctx, cfg, inv.Code(), discovery.Offer{Fingerprint: fpR})
	if err != nil {
		return words, fmt.Errorf("join: %w", err)
	}
	if err := <-errc; err != nil {
		return words, fmt.Errorf("pair: %w", err)
	}
	if string(sres.TransportKey) != string(rres.TransportKey) || sres.PeerFingerprint != fpR || rres.PeerFingerprint != fpS {
		return words, fmt.Errorf("the two sides disagree")
	}
	return words, nil
}

// TestRendezvousServerProcess runs the real `ferry rendezvous`, pairs
// through it, and stops it with SIGTERM: it shuts down cleanly and its
// logs never contain the code's words.
func TestRendezvousServerProcess(t *testing.T) {
	addr, cmd, logs := startRendezvousProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	words, err := pairOnce(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rendezvous server exited with %v after SIGTERM:\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "rendezvous server stopped") {
		t.Fatalf("no clean-stop log:\n%s", logs.String())
	}
	for _, w := range words {
		if strings.Contains(logs.String(), w) {
			t.Fatalf("server log contains the code word %q:\n%s", w, logs.String())
		}
	}
}

func TestRendezvousUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"rendezvous", "extra"}, {"rendezvous", "--nope"}} {
		out, err := exec.Command(ferryBinary, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage {
			t.Fatalf("%v: %v, want exit %d\n%s", args, err, exitUsage, out)
		}
	}
	out, err := exec.Command(ferryBinary, "rendezvous", "--listen", "256.0.0.1:1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("bad listen address: %v, want exit %d\n%s", err, exitFailure, out)
	}
}

// BenchmarkRendezvousPairings runs 2000 full pairings (PAKE, key
// confirmation, sealed offers) at once against one `ferry rendezvous`
// process on loopback, and reports pairings per second and the server
// process's peak resident memory. The per-address nameplate limit is lifted
// because every client shares 127.0.0.1.
func BenchmarkRendezvousPairings(b *testing.B) {
	const pairings = 2000
	fdlimit.Raise(b, 4*pairings+1000)
	addr, cmd, logs := startRendezvousProcess(b, "--max-nameplates-per-ip", "-1")
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var wg sync.WaitGroup
		errs := make(chan error, pairings)
		for range pairings {
			wg.Go(func() {
				if _, err := pairOnce(ctx, addr); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		cancel()
		close(errs)
		for err := range errs {
			b.Fatalf("a pairing failed: %v\nserver log:\n%s", err, lastLines(logs.String(), 20))
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(pairings*b.N)/elapsed.Seconds(), "pairings/s")
	if hwm, err := peakRSS(cmd.Process.Pid); err == nil {
		b.ReportMetric(float64(hwm)/1024, "server-peak-RSS-MB")
	}
	b.ReportMetric(float64(runtime.NumCPU()), "cpus")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// peakRSS reads a process's peak resident set size in KiB (Linux).
func peakRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
