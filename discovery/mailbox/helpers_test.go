package mailbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// testTimeout bounds every blocking step of a test.
const testTimeout = 10 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type testServer struct {
	s     *Server
	addr  string
	store *MemStore
}

// startServer serves cfg on a fresh 127.0.0.1 port until the test ends.
func startServer(t testing.TB, cfg ServerConfig) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	store, _ := cfg.Store.(*MemStore)
	if cfg.Store == nil {
		store = NewMemStore()
		cfg.Store = store
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), testTimeout)
		defer scancel()
		if err := s.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(testTimeout):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return &testServer{s: s, addr: ln.Addr().String(), store: store}
}

func (ts *testServer) lens() (nameplates, mailboxes int) { return ts.store.Len() }

// testCtx is a context that ends with the test or after testTimeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(c.shutdown)
	return c
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got error %v, want code %q", err, code)
	}
}

// rawConn speaks the wire protocol by hand.
type rawConn struct {
	t testing.TB
	net.Conn
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, Conn: nc}
}

func (r *rawConn) sendBytes(b []byte) {
	r.t.Helper()
	r.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := r.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// sendPayload sends payload as one frame.
func (r *rawConn) sendPayload(payload []byte) {
	r.t.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	r.sendBytes(append(b, payload...))
}

func (r *rawConn) send(v any) {
	r.t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendPayload(js)
}

type obj = map[string]any

func (r *rawConn) hello() {
	r.t.Helper()
	r.send(obj{"type": "hello", "version": 1, "side": "0123456789abcdef"})
	if f := r.read(); f["type"] != "welcome" || f["version"] != 1.0 {
		r.t.Fatalf("got %v, want welcome", f)
	}
}

// read reads one frame; it fails the test on EOF or timeout.
func (r *rawConn) read() obj {
	r.t.Helper()
	r.SetReadDeadline(time.Now().Add(testTimeout))
	payload, err := readFrame(r)
	if err != nil {
		r.t.Fatalf("read frame: %v", err)
	}
	var f obj
	if err := json.Unmarshal(payload, &f); err != nil {
		r.t.Fatalf("frame %q: %v", payload, err)
	}
	return f
}

// expectError reads an error frame with code.
func (r *rawConn) expectError(code string) obj {
	r.t.Helper()
	f := r.read()
	if f["type"] != "error" || f["code"] != code {
		r.t.Fatalf("got %v, want error %q", f, code)
	}
	return f
}

// expectEOF checks that the server closes the connection (with no further
// frames), then closes the client's side.
func (r *rawConn) expectEOF() {
	r.t.Helper()
	r.SetReadDeadline(time.Now().Add(testTimeout))
	b, err := io.ReadAll(r)
	defer r.Close()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		r.t.Fatalf("server did not close the connection")
	}
	if len(b) > 0 {
		r.t.Fatalf("unexpected %d bytes before close: %q", len(b), b)
	}
}

func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
