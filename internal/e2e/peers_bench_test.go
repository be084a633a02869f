//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
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

	"ferry/internal/netlab"
)

// Side-by-side benchmark settings (environment variables).
const (
	peersSizeEnv   = "FERRY_PEERS_SIZE"   // bytes per file: "1GiB" (default), "256MiB", "1000000"
	peersRoundsEnv = "FERRY_PEERS_ROUNDS" // rounds per benchmark iteration (default 2)
	peersChartEnv  = "FERRY_PEERS_CHART"  // write the SVG chart here (relative: to the module root)
	peersTableEnv  = "FERRY_PEERS_TABLE"  // write the markdown tables here (relative: to the module root)
	peersToolsEnv  = "FERRY_PEERS_TOOLS"  // only these tools, comma-separated: "ferry,magic-wormhole" (default all)
	// peersProfileEnv names a directory for CPU profiles of every ferry
	// process (send-ROUND-FILE.prof, receive-ROUND-FILE.prof), written
	// through ferry's FERRY_CPUPROFILE.
	peersProfileEnv = "FERRY_PEERS_PROFILE"
	// peersLogsEnv names a directory for the --verbose logs of every
	// ferry process (send-FILE-N.log, receive-FILE-N.log).
	peersLogsEnv = "FERRY_PEERS_LOGS"
)

// crocModule is the croc release the benchmark builds from the Go module
// proxy into a temporary directory (it is not a dependency of ferry).
const crocModule = "github.com/schollz/croc/v10@v10.7.0"

// Fixed loopback ports inside the benchmark's own namespace, where nothing
// else listens: the magic-wormhole mailbox and transit relay, and croc's
// relay. (croc's sender starts its own local relay on 9009-9013.)
const (
	wormholeMailboxAddr = "127.0.0.1:4000"
	wormholeTransitAddr = "127.0.0.1:4001"
	crocRelayPorts      = "9109,9110,9111,9112,9113"
	crocRelayAddr       = "127.0.0.1:9109"
	crocRelayPass       = "ferry-bench-pass"
)

// peerRun is one transfer of one file by one tool.
type peerRun struct {
	Round     int
	File      string
	Tool      string
	Size      int64
	Wall      time.Duration // receiver started (code known) to receiver exited
	Prep      time.Duration // sender started to code known (or listening)
	Flush     time.Duration // fsync of the received file after the receiver exited
	SendCPU   time.Duration // user+system, from the sender's rusage
	RecvCPU   time.Duration
	ServerCPU time.Duration // the tool's local servers during the run (from /proc)
	SendRSSKB int64         // peak resident set size, KiB
	RecvRSSKB int64
}

func (r peerRun) MBps() float64 { return float64(r.Size) / 1e6 / r.Wall.Seconds() }

// peerTool is one program in the comparison.
type peerTool struct {
	name string
	// servers are the process ids of the tool's local servers.
	servers []int
	// transfer moves src into the directory out (as filepath.Base(src))
	// inside the namespace and returns the measurements.
	transfer func(b *testing.B, src, out string) peerRun
}

// BenchmarkPeers moves the same two files (random data and word-salad
// text, 1 GiB each) with ferry, magic-wormhole, croc and a plain TCP copy,
// every process inside one network namespace the benchmark creates (only
// its loopback exists, so no packet can leave the machine; every tool gets
// explicit local server addresses). Each tool uses its own local servers:
// `ferry rendezvous`, magic-wormhole's mailbox and transit relay (Debian
// packages magic-wormhole, python3-magic-wormhole-mailbox-server,
// magic-wormhole-transit-relay), and `croc relay` (croc is built from the
// Go module proxy at a pinned version into a temporary directory). Tools
// that are missing are left out with a message; the benchmark needs root
// for the namespace and skips otherwise.
//
// Rounds are interleaved: each round runs every tool once per file, in an
// order rotated from round to round. Every received file is compared byte
// for byte with its source. For each run it records the wall time from
// starting the receiver (once the code is known) to the receiver's exit,
// and for each side the CPU seconds (user+system) and peak RSS from the
// process's rusage. It logs a table of every run, reports each tool's mean
// MB/s per file, and can write the tables (FERRY_PEERS_TABLE) and an SVG
// bar chart (FERRY_PEERS_CHART). Run with
//
//	go test -run XXX -bench Peers -benchtime 1x ./internal/e2e/
//
// FERRY_PEERS_SIZE=256MiB for quicker runs, FERRY_PEERS_ROUNDS=N for N
// rounds per iteration (default 2).
func BenchmarkPeers(b *testing.B) {
	netlab.RequireRoot(b)
	size := peersSize(b)
	rounds := peersRounds(b)
	dir := b.TempDir()
	files := []struct{ name, path string }{
		{"random", filepath.Join(dir, "random.bin")},
		{"text", filepath.Join(dir, "text.txt")},
	}
	writeRandomFile(b, files[0].path, size)
	writeTextLike(b, files[1].path, size)

	ns := netlab.NewNamespace(b)
	ctx := b.Context()
	var tools []peerTool
	var notes []string
	skip := func(tool, why string) {
		msg := fmt.Sprintf("skipping %s: %s", tool, why)
		b.Log(msg)
		notes = append(notes, msg)
	}
	versions := map[string]string{"go": runtime.Version()}

	want := peersTools(b)
	if want("tcp-copy") {
		tools = append(tools, peerTool{"tcp-copy", nil, func(b *testing.B, src, out string) peerRun {
			return tcpPeerCopy(b, ns, src, out)
		}})
	}

	if want("ferry") {
		rv := nsCommand(ctx, ns, ferryBinary, "rendezvous", "--listen", "127.0.0.1:0")
		rvAddr, _ := startRendezvousCmd(b, rv, listeningRE)
		tools = append(tools, peerTool{"ferry", []int{rv.Process.Pid}, func(b *testing.B, src, out string) peerRun {
			return ferryPeerCopy(b, ns, rvAddr, src, out)
		}})
	}

	if !want("magic-wormhole") {
		// left out on request
	} else if pids, why := startWormholeServers(b, ns, dir); why != "" {
		skip("magic-wormhole", why)
	} else {
		versions["magic-wormhole"] = strings.TrimPrefix(commandVersion("wormhole", "--version"), "magic-wormhole ")
		tools = append(tools, peerTool{"magic-wormhole", pids, func(b *testing.B, src, out string) peerRun {
			return wormholePeerCopy(b, ns, dir, src, out)
		}})
	}

	if !want("croc") {
		// left out on request
	} else if croc, why := buildCroc(b); why != "" {
		skip("croc", why)
	} else if pid, why := startCrocRelay(b, ns, croc, dir); why != "" {
		skip("croc", why)
	} else {
		versions["croc"] = strings.TrimPrefix(crocModule[strings.LastIndexByte(crocModule, '@')+1:], "v")
		tools = append(tools, peerTool{"croc", []int{pid}, func(b *testing.B, src, out string) peerRun {
			return crocPeerCopy(b, ns, croc, dir, src, out)
		}})
	}

	env := peersEnvironment(size, rounds*b.N, versions, notes)
	var runs []peerRun
	b.ResetTimer()
	round := 0
	for range b.N {
		for range rounds {
			round++
			for fi, f := range files {
				for i := range tools {
					t := tools[(i+round+fi)%len(tools)]
					out := filepath.Join(dir, "out-"+t.name)
					if err := os.MkdirAll(out, 0o755); err != nil {
						b.Fatal(err)
					}
					cpu0 := serversCPU(b, t.servers)
					r := t.transfer(b, f.path, out)
					b.StopTimer()
					r.ServerCPU = serversCPU(b, t.servers) - cpu0
					// ferry and the TCP copy fsync before they exit; the
					// others leave it to the kernel. How long the received
					// file then takes to reach the disk is recorded apart.
					r.Flush = fsyncFile(b, filepath.Join(out, filepath.Base(f.path)))
					if err := sameFile(f.path, filepath.Join(out, filepath.Base(f.path))); err != nil {
						b.Fatalf("%s, %s file: received file differs: %v", t.name, f.name, err)
					}
					r.Round, r.File, r.Tool, r.Size = round, f.name, t.name, size
					runs = append(runs, r)
					b.Logf("round %d %-6s %-14s %7.2f s %8.1f MB/s  fsync after %5.2f s  CPU send %6.2f s recv %6.2f s servers %6.2f s  RSS send %6.1f MB recv %6.1f MB",
						r.Round, r.File, r.Tool, r.Wall.Seconds(), r.MBps(), r.Flush.Seconds(), r.SendCPU.Seconds(), r.RecvCPU.Seconds(), r.ServerCPU.Seconds(),
						float64(r.SendRSSKB)/1024, float64(r.RecvRSSKB)/1024)
					os.RemoveAll(out)
					// Write back what this run left in the page cache
					// before the next one starts.
					syscall.Sync()
					b.StartTimer()
				}
			}
		}
	}
	b.StopTimer()
	env.LoadAfter = loadAverage()

	for _, s := range summarizePeers(runs) {
		b.ReportMetric(s.MeanMBps, s.Tool+"-"+s.File+"-MB/s")
	}
	table := peersMarkdown(env, runs)
	b.Log("\n" + table)
	if p := os.Getenv(peersTableEnv); p != "" {
		writeReport(b, p, []byte(table))
	}
	if p := os.Getenv(peersChartEnv); p != "" {
		writeReport(b, p, peersSVG(env, runs))
	}
}

// serversCPU is the CPU time the processes have used so far.
func serversCPU(b *testing.B, pids []int) time.Duration {
	var d time.Duration
	for _, pid := range pids {
		d += procCPU(b, pid)
	}
	return d
}

// fsyncFile fsyncs a received file and returns how long that took.
func fsyncFile(b *testing.B, path string) time.Duration {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatalf("received file: %v", err)
	}
	defer f.Close()
	start := time.Now()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// peersSize parses FERRY_PEERS_SIZE: bytes, or a number with KiB, MiB or
// GiB (1 GiB by default).
func peersSize(tb testing.TB) int64 {
	v := strings.TrimSpace(os.Getenv(peersSizeEnv))
	if v == "" {
		return 1 << 30
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			v, mult = strings.TrimSpace(n), m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive size such as 1GiB, 256MiB or 1000000", peersSizeEnv, os.Getenv(peersSizeEnv))
	}
	return n * mult
}

func peersRounds(tb testing.TB) int {
	v := os.Getenv(peersRoundsEnv)
	if v == "" {
		return 2
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number of rounds", peersRoundsEnv, v)
	}
	return n
}

// nsCommand is ns.Command with the child killed if the benchmark dies.
// `ip netns exec` execs the program in place, so the process waited for
// (and its rusage) is the tool itself.
func nsCommand(ctx context.Context, ns *netlab.Namespace, name string, args ...string) *exec.Cmd {
	cmd := ns.Command(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// peerProc is a running tool whose output (stdout and stderr together) is
// collected.
type peerProc struct {
	name    string
	cmd     *exec.Cmd
	out     lockedBuffer
	started time.Time
	ended   time.Time
	done    chan struct{}
	err     error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPeerProc starts cmd and kills it at cleanup.
func startPeerProc(b *testing.B, name string, cmd *exec.Cmd) *peerProc {
	b.Helper()
	p := &peerProc{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitFor waits until the output matches re and returns the first group.
func (p *peerProc) waitFor(b *testing.B, what string, re *regexp.Regexp, timeout time.Duration) string {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m[1]
		}
		select {
		case <-p.done:
			if m := re.FindStringSubmatch(p.out.String()); m != nil {
				return m[1]
			}
			b.Fatalf("%s exited (%v) before %s:\n%s", p.name, p.err, what, lastLines(p.out.String(), 30))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: no %s within %v:\n%s", p.name, what, timeout, lastLines(p.out.String(), 30))
		}
	}
}

// wait waits for the process to exit successfully.
func (p *peerProc) wait(b *testing.B, timeout time.Duration) {
	b.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		b.Fatalf("%s did not finish within %v:\n%s", p.name, timeout, lastLines(p.out.String(), 30))
	}
	if p.err != nil {
		b.Fatalf("%s: %v:\n%s", p.name, p.err, lastLines(p.out.String(), 30))
	}
}

// rusage returns a finished process's user+system CPU time and peak RSS
// (KiB). The kernel's figures for the waited-for process include its own
// waited-for children, so a wrapper's helpers would be counted too.
func rusage(ps *os.ProcessState) (time.Duration, int64) {
	if ps == nil {
		return 0, 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0
	}
	return ps.UserTime() + ps.SystemTime(), int64(ru.Maxrss)
}

// transferTimeout bounds each side of one transfer.
const transferTimeout = 10 * time.Minute

// finishPeerRun waits for the receiver, then the sender, and measures.
func finishPeerRun(b *testing.B, send, recv *peerProc, codeAt time.Time) peerRun {
	b.Helper()
	recv.wait(b, transferTimeout)
	send.wait(b, time.Minute)
	var r peerRun
	r.Wall = recv.ended.Sub(recv.started)
	r.Prep = codeAt.Sub(send.started)
	r.SendCPU, r.SendRSSKB = rusage(send.cmd.ProcessState)
	r.RecvCPU, r.RecvRSSKB = rusage(recv.cmd.ProcessState)
	return r
}

var tcpListeningRE = regexp.MustCompile(`tcp=([0-9.]+:\d+)`)

// tcpPeerCopy is the plain TCP copy: the receiver (this test binary in
// receive mode) listens, then the sender connects and streams the file.
func tcpPeerCopy(b *testing.B, ns *netlab.Namespace, src, out string) peerRun {
	return tcpCopyBetween(b, ns, ns, "127.0.0.1", src, out)
}

// tcpCopyBetween is the plain TCP copy from namespace from to a receiver
// listening on host in namespace to.
func tcpCopyBetween(b *testing.B, from, to *netlab.Namespace, host, src, out string) peerRun {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	recvCmd := nsCommand(ctx, to, self)
	recvCmd.Env = append(os.Environ(), peersTCPEnv+"=recv", peersTCPPathEnv+"="+filepath.Join(out, filepath.Base(src)), peersTCPListenEnv+"="+host+":0")
	recv := startPeerProc(b, "tcp-copy receiver", recvCmd)
	addr := recv.waitFor(b, "its address", tcpListeningRE, time.Minute)
	sendCmd := nsCommand(ctx, from, self)
	sendCmd.Env = append(os.Environ(), peersTCPEnv+"=send", peersTCPPathEnv+"="+src, peersTCPAddrEnv+"="+addr)
	send := startPeerProc(b, "tcp-copy sender", sendCmd)
	r := finishPeerRun(b, send, recv, send.started)
	return r
}

// ferryPeerCopy runs `ferry send` and, once its code is known, `ferry
// receive`, both kept off the LAN and away from routers.
func ferryPeerCopy(b *testing.B, ns *netlab.Namespace, rendezvous, src, out string) peerRun {
	ctx := b.Context()
	flags := []string{"--json", "--no-lan", "--no-portmap", "--rendezvous", rendezvous, "--listen", "127.0.0.1:0"}
	if os.Getenv(peersLogsEnv) != "" {
		flags = append(flags, "--verbose")
	}
	sendCmd := nsCommand(ctx, ns, ferryBinary, append(append([]string{"send"}, flags...), src)...)
	profile(b, sendCmd, "send", src)
	sendLog := verboseLog(b, "send", src)
	send := startFerryCmd(b, sendCmd)
	c := send.waitEvent(b, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	codeAt := time.Now()
	recvStart := time.Now()
	recvCmd := nsCommand(ctx, ns, ferryBinary, append(append([]string{"receive"}, flags...), "--yes", "--out", out, c.Code)...)
	profile(b, recvCmd, "receive", src)
	recvLog := verboseLog(b, "receive", src)
	recv := startFerryCmd(b, recvCmd)
	if code := recv.wait(b); code != 0 {
		b.Fatalf("ferry receive exited %d: %s\nevents: %+v", code, recv.stderr.String(), recv.events)
	}
	recvEnd := time.Now()
	if code := send.wait(b); code != 0 {
		b.Fatalf("ferry send exited %d: %s\nevents: %+v", code, send.stderr.String(), send.events)
	}
	keepLog(b, sendLog, send.stderr.Bytes())
	keepLog(b, recvLog, recv.stderr.Bytes())
	var r peerRun
	r.Wall = recvEnd.Sub(recvStart)
	r.Prep = codeAt.Sub(send.started)
	r.SendCPU, r.SendRSSKB = rusage(send.cmd.ProcessState)
	r.RecvCPU, r.RecvRSSKB = rusage(recv.cmd.ProcessState)
	return r
}

// profile makes cmd, a ferry process, write a CPU profile into the
// directory FERRY_PEERS_PROFILE names, if it names one: SIDE-FILE-N.prof
// for the first unused N.
func profile(b *testing.B, cmd *exec.Cmd, side, src string) {
	if p := peersOutput(b, peersProfileEnv, side, src, "prof"); p != "" {
		cmd.Env = append(cmd.Environ(), "FERRY_CPUPROFILE="+p)
	}
}

// verboseLog returns the file the --verbose log of a ferry process is
// to be kept in when FERRY_PEERS_LOGS names a directory (SIDE-FILE-N.log;
// see keepLog), or "".
func verboseLog(b *testing.B, side, src string) string {
	return peersOutput(b, peersLogsEnv, side, src, "log")
}

// keepLog writes a ferry process's stderr to path, if there is one.
func keepLog(b *testing.B, path string, stderr []byte) {
	if path == "" {
		return
	}
	if err := os.WriteFile(path, stderr, 0o644); err != nil {
		b.Fatal(err)
	}
}

// peersOutput returns the first unused SIDE-FILE-N.EXT in the directory
// the environment variable env names (relative: to the module root),
// making the directory, or "" when env is unset.
func peersOutput(b *testing.B, env, side, src, ext string) string {
	dir := os.Getenv(env)
	if dir == "" {
		return ""
	}
	if !filepath.IsAbs(dir) {
		root, err := peersModuleRoot()
		if err != nil {
			b.Fatal(err)
		}
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	base := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	for n := 1; ; n++ {
		p := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.%s", side, base, n, ext))
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return p
		}
	}
}

// peersTools parses FERRY_PEERS_TOOLS into a test for a tool's name: every
// tool when it is unset.
func peersTools(b *testing.B) func(string) bool {
	v := strings.TrimSpace(os.Getenv(peersToolsEnv))
	if v == "" {
		return func(string) bool { return true }
	}
	set := map[string]bool{}
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		switch t {
		case "ferry", "magic-wormhole", "croc", "tcp-copy":
			set[t] = true
		default:
			b.Fatalf("%s=%q: unknown tool %q (want ferry, magic-wormhole, croc, tcp-copy)", peersToolsEnv, v, t)
		}
	}
	return func(t string) bool { return set[t] }
}

// waitTCP waits until something accepts connections at addr inside ns.
func waitTCP(ns *netlab.Namespace, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startWormholeServers starts magic-wormhole's mailbox server and transit
// relay on loopback inside ns, or says why it cannot.
func startWormholeServers(b *testing.B, ns *netlab.Namespace, dir string) ([]int, string) {
	b.Helper()
	if _, err := exec.LookPath("wormhole"); err != nil {
		return nil, "the wormhole command is not installed (Debian package magic-wormhole)"
	}
	if _, err := exec.LookPath("twist3"); err != nil {
		return nil, "twist3 is not installed (Debian package python3-twisted, with python3-magic-wormhole-mailbox-server and magic-wormhole-transit-relay)"
	}
	for plugin, pkg := range map[string]string{"wormhole-mailbox": "python3-magic-wormhole-mailbox-server", "transitrelay": "magic-wormhole-transit-relay"} {
		ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
		err := exec.CommandContext(ctx, "twist3", plugin, "--help").Run()
		cancel()
		if err != nil {
			return nil, fmt.Sprintf("twist3 has no %s plugin (Debian package %s)", plugin, pkg)
		}
	}
	wdir := filepath.Join(dir, "wormhole-servers")
	if err := os.MkdirAll(wdir, 0o755); err != nil {
		b.Fatal(err)
	}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	mailbox := nsCommand(b.Context(), ns, "twist3", "wormhole-mailbox",
		"--port=tcp:"+port(wormholeMailboxAddr)+":interface=127.0.0.1",
		"--channel-db="+filepath.Join(wdir, "relay.sqlite"))
	mailbox.Dir = wdir
	mp := startPeerProc(b, "wormhole mailbox server", mailbox)
	transit := nsCommand(b.Context(), ns, "twist3", "transitrelay",
		"--port=tcp:"+port(wormholeTransitAddr)+":interface=127.0.0.1")
	transit.Dir = wdir
	tp := startPeerProc(b, "wormhole transit relay", transit)
	for _, s := range []struct {
		p    *peerProc
		addr string
	}{{mp, wormholeMailboxAddr}, {tp, wormholeTransitAddr}} {
		if err := waitTCP(ns, s.addr, 30*time.Second); err != nil {
			return nil, fmt.Sprintf("%s did not listen on %s: %v\n%s", s.p.name, s.addr, err, lastLines(s.p.out.String(), 10))
		}
	}
	return []int{mailbox.Process.Pid, transit.Process.Pid}, ""
}

var wormholeCodeRE = regexp.MustCompile(`Wormhole code is: (\S+)`)

// wormholePeerCopy runs `wormhole send` and, once its code is printed,
// `wormhole receive`, both pointed at the local mailbox and transit relay.
func wormholePeerCopy(b *testing.B, ns *netlab.Namespace, dir, src, out string) peerRun {
	ctx := b.Context()
	servers := []string{"--relay-url", "ws://" + wormholeMailboxAddr + "/v1", "--transit-helper", "tcp:" + wormholeTransitAddr}
	sendCmd := nsCommand(ctx, ns, "wormhole", append(servers, "send", "--hide-progress", src)...)
	sendCmd.Dir = dir
	send := startPeerProc(b, "wormhole send", sendCmd)
	code := send.waitFor(b, "the code", wormholeCodeRE, 2*time.Minute)
	codeAt := time.Now()
	recvCmd := nsCommand(ctx, ns, "wormhole", append(servers, "receive", "--hide-progress", "--accept-file",
		"--output-file", filepath.Join(out, filepath.Base(src)), code)...)
	recvCmd.Dir = dir
	recv := startPeerProc(b, "wormhole receive", recvCmd)
	return finishPeerRun(b, send, recv, codeAt)
}

// buildCroc builds croc at the pinned version from the Go module proxy
// into a temporary directory, outside ferry's module, or says why not.
func buildCroc(b *testing.B) (string, string) {
	b.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := b.TempDir()
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "install", crocModule)
	// A directory outside any module, so ferry's go.mod is neither read
	// nor changed; GOBIN puts the binary in the temporary directory.
	cmd.Dir = bin
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("building %s from the Go module proxy failed (offline?): %v\n%s", crocModule, err, lastLines(string(out), 10))
	}
	return filepath.Join(bin, "croc"), ""
}

// crocEnv gives croc a temporary home, so no remembered settings of the
// machine's user are read or written.
func crocEnv(dir string, extra ...string) []string {
	home := filepath.Join(dir, "croc-home")
	os.MkdirAll(home, 0o755)
	return append(append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config")), extra...)
}

// startCrocRelay starts `croc relay` on loopback inside ns.
func startCrocRelay(b *testing.B, ns *netlab.Namespace, croc, dir string) (int, string) {
	b.Helper()
	cmd := nsCommand(b.Context(), ns, croc, "--pass", crocRelayPass, "relay", "--host", "127.0.0.1", "--ports", crocRelayPorts)
	cmd.Env = crocEnv(dir)
	p := startPeerProc(b, "croc relay", cmd)
	if err := waitTCP(ns, crocRelayAddr, 30*time.Second); err != nil {
		return 0, fmt.Sprintf("croc relay did not listen on %s: %v\n%s", crocRelayAddr, err, lastLines(p.out.String(), 10))
	}
	return cmd.Process.Pid, ""
}

var crocCodeRE = regexp.MustCompile(`Code is: (\S+)`)

// crocPeerCopy runs `croc send` with a fresh code (given in CROC_SECRET,
// as croc 10 wants on Unix) and, once it prints the code (after hashing
// the file), the receiver. Both name the local relay and its password;
// the sender also runs croc's default local relay and announces it by
// multicast (which stays on the namespace's loopback), as croc does on a
// LAN.
func crocPeerCopy(b *testing.B, ns *netlab.Namespace, croc, dir, src, out string) peerRun {
	ctx := b.Context()
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	secret := "1234-ferry-bench-" + hex.EncodeToString(rb[:])
	common := []string{"--relay", crocRelayAddr, "--pass", crocRelayPass, "--yes"}
	sendCmd := nsCommand(ctx, ns, croc, append(common, "--disable-clipboard", "send", src)...)
	sendCmd.Env = crocEnv(dir, "CROC_SECRET="+secret)
	sendCmd.Dir = dir
	send := startPeerProc(b, "croc send", sendCmd)
	send.waitFor(b, "the code", crocCodeRE, 5*time.Minute)
	codeAt := time.Now()
	recvCmd := nsCommand(ctx, ns, croc, append(common, "--overwrite", "--out", out)...)
	recvCmd.Env = crocEnv(dir, "CROC_SECRET="+secret)
	recvCmd.Dir = out
	recv := startPeerProc(b, "croc receive", recvCmd)
	return finishPeerRun(b, send, recv, codeAt)
}

// commandVersion is the first line a command prints for its version.
func commandVersion(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// writeReport writes a generated report; a relative path is taken from
// the module root (where go.mod is), not the package directory go test
// runs in.
func writeReport(b *testing.B, path string, data []byte) {
	b.Helper()
	if !filepath.IsAbs(path) {
		root, err := peersModuleRoot()
		if err != nil {
			b.Fatal(err)
		}
		path = filepath.Join(root, path)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %s", path)
}

func peersModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}
