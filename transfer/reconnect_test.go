package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/vnet"
	"ferry/transport"
)

// reconnectLab is two ferry peers on an in-memory network whose link the
// test can cut, with short transport timers so a lost connection is noticed
// within about a second.
type reconnectLab struct {
	net        *vnet.Network
	ipA, ipB   netip.Addr
	send, recv *peer
	sendTP     transport.Peer
	recvTP     transport.Peer
}

func newReconnectLab(t *testing.T, reconnectTimeout time.Duration) *reconnectLab {
	t.Helper()
	n := vnet.New(vnet.Options{Seed: 1})
	t.Cleanup(func() { n.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lab := &reconnectLab{net: n, ipA: netip.MustParseAddr("198.18.0.1"), ipB: netip.MustParseAddr("198.18.0.2")}
	open := func(ip netip.Addr) *peer {
		cfg := Config{Logger: quiet, ReconnectTimeout: reconnectTimeout, Transport: transport.Config{
			Bind:                func() (transport.PacketConn, error) { return n.Listen(netip.AddrPortFrom(ip, 0)) },
			IdleTimeout:         time.Second,
			KeepAlive:           200 * time.Millisecond,
			NetworkPollInterval: -1,
		}}.withDefaults()
		tc := cfg.Transport
		tc.Logger = quiet
		sock, err := transport.NewSocket(tc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sock.Close() })
		cert, err := transport.NewCertificate()
		if err != nil {
			t.Fatal(err)
		}
		return &peer{cfg: cfg, sock: sock, cert: cert}
	}
	lab.send, lab.recv = open(lab.ipA), open(lab.ipB)
	key := make([]byte, 32)
	rand.Read(key)
	lab.sendTP = transport.Peer{Role: transport.RoleDialer, Key: key, Certificate: lab.send.cert, PeerFingerprint: lab.recv.cert.Fingerprint, Candidates: lab.recv.sock.LocalCandidates()}
	lab.recvTP = transport.Peer{Role: transport.RoleAcceptor, Key: key, Certificate: lab.recv.cert, PeerFingerprint: lab.send.cert.Fingerprint, Candidates: lab.send.sock.LocalCandidates()}
	return lab
}

// cutAfter takes the link down once n bytes have been delivered from the
// sender to the receiver, and closes the returned channel then.
func (lab *reconnectLab) cutAfter(n int64) <-chan struct{} {
	var delivered atomic.Int64
	var once sync.Once
	cut := make(chan struct{})
	var remove func()
	remove = lab.net.Tap(func(p vnet.PacketInfo) {
		if p.Dropped || p.Src.Addr() != lab.ipA {
			return
		}
		if delivered.Add(int64(p.Len)) >= n {
			once.Do(func() {
				lab.net.SetLink(lab.ipA, lab.ipB, vnet.Link{Down: true})
				close(cut)
				remove()
			})
		}
	})
	return cut
}

// eventLog records a side's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	// onState, when set, is called (outside mu) for every state event.
	onState func(State)
}

func (l *eventLog) sink(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	if e.Kind == EventState && l.onState != nil {
		l.onState(e.State)
	}
}

func (l *eventLog) count(match func(Event) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if match(e) {
			n++
		}
	}
	return n
}

type sessionResult struct {
	st  Stats
	err error
}

// run connects both peers and transfers src into out, each side with its
// own Reconnector from the session layer.
func (lab *reconnectLab) run(t *testing.T, ctx context.Context, src, out string, sendLog, recvLog *eventLog) (send, recv sessionResult) {
	t.Helper()
	lab.send.emit, lab.recv.emit = safeSink(sendLog.sink), safeSink(recvLog.sink)
	m, sources, _, err := BuildManifest(ctx, []string{src}, DefaultChunkSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sendDone := make(chan sessionResult, 1)
	wg.Go(func() {
		l, err := lab.send.connect(ctx, lab.sendTP, &wg)
		if err != nil {
			sendDone <- sessionResult{err: err}
			return
		}
		defer l.close()
		st, err := Send(ctx, l.current(), SendOptions{Manifest: m, Sources: sources, Sink: lab.send.emit, Reconnect: l.reconnector(ctx)})
		sendDone <- sessionResult{st, err}
	})
	l, err := lab.recv.connect(ctx, lab.recvTP, &wg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	recv.st, recv.err = Receive(ctx, l.current(), ReceiveOptions{OutDir: out, Sink: lab.recv.emit, Reconnect: l.reconnector(ctx)})
	send = <-sendDone // the sender ends by itself (ctx bounds it)
	return send, recv
}

func isState(s State) func(Event) bool {
	return func(e Event) bool { return e.Kind == EventState && e.State == s }
}

// TestReconnectResumesInSession cuts the network half way through a
// transfer for longer than the idle timeout, so both QUIC connections die,
// then restores it once both sides are reconnecting: the transfer must
// finish in the same session, byte-identical, without resending what
// already arrived, and both sides must report the reconnection.
func TestReconnectResumesInSession(t *testing.T) {
	lab := newReconnectLab(t, 30*time.Second)
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	const size = 32 << 20
	writeRandomFile(t, src, size)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cut := lab.cutAfter(size / 2)

	// Restore the link once both sides have noticed the loss.
	var reconnecting atomic.Int32
	restore := func(s State) {
		if s == StateReconnecting && reconnecting.Add(1) == 2 {
			<-cut
			lab.net.SetLink(lab.ipA, lab.ipB, vnet.Link{})
		}
	}
	sendLog, recvLog := &eventLog{onState: restore}, &eventLog{onState: restore}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	send, recv := lab.run(t, ctx, src, out, sendLog, recvLog)
	if send.err != nil || recv.err != nil {
		t.Fatalf("send: %v; receive: %v", send.err, recv.err)
	}
	select {
	case <-cut:
	default:
		t.Fatal("the link was never cut: the test did not test a reconnection")
	}
	want, _ := os.ReadFile(src)
	got, err := os.ReadFile(filepath.Join(out, "big.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("received file differs (err %v)", err)
	}
	for name, log := range map[string]*eventLog{"sender": sendLog, "receiver": recvLog} {
		if n := log.count(isState(StateReconnecting)); n != 1 {
			t.Errorf("%s reported reconnecting %d times, want 1", name, n)
		}
		if n := log.count(func(e Event) bool { return e.Kind == EventPath && e.Reason == "reconnected" }); n != 1 {
			t.Errorf("%s reported %d reconnected paths, want 1", name, n)
		}
		if n := log.count(func(e Event) bool { return e.Kind == EventResumed }); n != 0 {
			t.Errorf("%s reported resumed %d times inside one session", name, n)
		}
	}
	// Chunks verified before the cut are not sent again: everything the
	// receiver read from the network (both connections) stays well under
	// the file plus the half that had arrived.
	if recv.st.WireBytes > size*5/4 {
		t.Errorf("receiver read %d bytes from the network for a %d-byte file: chunks held before the cut were sent again", recv.st.WireBytes, size)
	}
	if recv.st.Moved != size || recv.st.Skipped != 0 {
		t.Errorf("receiver stats %+v, want %d moved, 0 skipped", recv.st, size)
	}
	t.Logf("sender %v; receiver %v", send.st, recv.st)
}

// TestReconnectGivesUp cuts the network for good: both sides must stop
// with peer_gone after the reconnect timeout, keeping the partial data.
func TestReconnectGivesUp(t *testing.T) {
	lab := newReconnectLab(t, 2*time.Second)
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	const size = 16 << 20
	writeRandomFile(t, src, size)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	lab.cutAfter(size / 2)
	sendLog, recvLog := &eventLog{}, &eventLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	send, recv := lab.run(t, ctx, src, out, sendLog, recvLog)
	for name, err := range map[string]error{"sender": send.err, "receiver": recv.err} {
		if KindOf(err) != KindPeerGone {
			t.Errorf("%s: got %v (kind %q), want peer_gone", name, err, KindOf(err))
		}
	}
	if sendLog.count(isState(StateReconnecting)) != 1 || recvLog.count(isState(StateReconnecting)) != 1 {
		t.Error("both sides should have tried to reconnect once")
	}
	entries, err := os.ReadDir(filepath.Join(out, PartialDirName))
	if err != nil || len(entries) == 0 {
		t.Errorf("partial data should be kept for a rerun: %v, %d entries", err, len(entries))
	}
}
