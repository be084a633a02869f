// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, in the test's temporary directory, killed when
// the test ends. Tests skip when redis-server is not installed. Test-only.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long redis-server may take to start and answer.
const startTimeout = 20 * time.Second

// Server is one redis-server process. Stop and Restart let a test take it
// away and bring it back on the same port, as when Redis restarts.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	persist bool // append-only file, synced on every write: a restart keeps the data

	mu      sync.Mutex
	running *process
}

// process is one run of redis-server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
	out    *syncBuffer   // what it printed, for failure messages
}

// Start starts a redis-server on a free 127.0.0.1 port and returns its
// address (host:port). It is killed when the test ends. It skips the test
// when redis-server is not installed.
func Start(t testing.TB) (addr string) {
	t.Helper()
	return StartServer(t).Addr()
}

// StartServer is Start, returning the Server so that the test can stop and
// restart it.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return startServer(t, false)
}

// StartPersistentServer is StartServer with Redis's append-only file,
// synced on every write, as a deployment that must survive a Redis
// restart runs it: Restart brings the data back.
func StartPersistentServer(t testing.TB) *Server {
	t.Helper()
	return startServer(t, true)
}

func startServer(t testing.TB, persist bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/redis-server"); serr != nil {
			t.Skip("redis-server is not installed (Debian: apt-get install redis-server); skipping the tests against a real Redis")
		}
		bin = "/usr/bin/redis-server"
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), persist: persist}
	t.Cleanup(s.Stop)
	// Another process may take the free port before redis-server binds it:
	// try a few.
	var lastErr error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// Addr returns the server's address, host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Pid returns the running redis-server's process ID, or 0 when stopped
// (a benchmark reads its CPU time).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		return 0
	}
	return s.running.cmd.Process.Pid
}

// Stop kills the server and waits until it has exited. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.running
	s.running = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Restart stops the server if it runs and starts it again on the same
// port: empty, or with its data for a persistent server.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// start runs redis-server on s.port and returns once it answers PING.
func (s *Server) start() error {
	appendOnly := []string{"--appendonly", "no"}
	if s.persist {
		appendOnly = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	cmd := exec.Command(s.bin, append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--dir", s.dir,
	}, appendOnly...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	out := &syncBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), out: out}
	// Readiness is an event: redis-server logs a line when it listens.
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			out.Write(append(sc.Bytes(), '\n'))
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	kill := func() {
		_ = cmd.Process.Kill()
		<-p.exited
	}
	select {
	case <-ready:
	case <-p.exited:
		return fmt.Errorf("redis-server on port %d exited at start:\n%s", s.port, out.String())
	case <-time.After(startTimeout):
		kill()
		return fmt.Errorf("redis-server on port %d did not start within %v:\n%s", s.port, startTimeout, out.String())
	}
	if err := ping(s.Addr()); err != nil {
		kill()
		return fmt.Errorf("redis-server on port %d: %w\n%s", s.port, err, out.String())
	}
	s.mu.Lock()
	s.running = p
	s.mu.Unlock()
	return nil
}

// ping sends PING over a fresh connection and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, startTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(startTimeout))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("PING: %w", err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener has no TCP address")
	}
	return addr.Port, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
