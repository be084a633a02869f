package rendezvous

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry/discovery/mailbox"
	"ferry/transport"
)

const testTimeout = 10 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testRendezvous is a rendezvous server (mailbox, relay, STUN) and its
// metrics listener on loopback ports, as `ferry rendezvous --metrics` runs
// them.
type testRendezvous struct {
	addr, stunAddr, metricsURL string
}

func startRendezvous(t *testing.T) *testRendezvous {
	t.Helper()
	m := NewMetrics()
	s := mailbox.NewServer(mailbox.ServerConfig{Logger: quietLogger(), Store: m.InstrumentStore(mailbox.NewMemStore())})
	relay := transport.NewRelayServer(transport.RelayConfig{Logger: quietLogger()})
	m.WatchServer(s)
	m.WatchRelay(relay)
	ln, pc, err := mailbox.Listen("127.0.0.1:0")
	must(t, err)
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served, metricsServed := make(chan error, 1), make(chan error, 1)
	go func() { served <- s.ServeAll(ctx, ln, pc, mailbox.WithRelayServer(relay)) }()
	go func() { metricsServed <- m.Serve(ctx, mln) }()
	t.Cleanup(func() {
		cancel()
		for _, c := range []chan error{served, metricsServed} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(testTimeout):
				t.Error("a server did not stop")
			}
		}
		relay.Close()
	})
	return &testRendezvous{
		addr:       ln.Addr().String(),
		stunAddr:   pc.LocalAddr().String(),
		metricsURL: "http://" + mln.Addr().String() + "/metrics",
	}
}

// scrape GETs the metrics and returns each sample by its series, as
// written: `name` or `name{label="value"}`; the body comes too.
func scrape(t *testing.T, url string) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	samples := make(map[string]float64)
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples, string(body)
}

// pair runs a whole pairing through the mailbox: allocate, claim, a
// message each way, close happy. It returns the sides.
func pair(t *testing.T, addr string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, err := mailbox.Dial(ctx, addr)
	must(t, err)
	b, err := mailbox.Dial(ctx, addr)
	must(t, err)
	np, err := a.Allocate(ctx)
	must(t, err)
	must(t, a.Claim(ctx, np))
	must(t, b.Claim(ctx, np))
	for _, dir := range []struct{ from, to *mailbox.Client }{{a, b}, {b, a}} {
		must(t, dir.from.Add(ctx, "pake", []byte("hi")))
		if _, err := dir.to.Receive(ctx, "pake"); err != nil {
			t.Fatal(err)
		}
	}
	must(t, b.Close(ctx, mailbox.Happy))
	must(t, a.Close(ctx, mailbox.Happy))
	return []string{a.Side(), b.Side()}
}

// queryStun sends one Binding request to addr and waits for the answer.
func queryStun(t *testing.T, addr string) {
	t.Helper()
	uc, err := net.Dial("udp", addr)
	must(t, err)
	defer uc.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	_, err = uc.Write(req.Raw)
	must(t, err)
	uc.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 1500)
	n, err := uc.Read(buf)
	must(t, err)
	var resp stun.Message
	must(t, stun.Decode(buf[:n], &resp))
	if resp.Type != stun.BindingSuccess {
		t.Fatalf("STUN answer %v", resp.Type)
	}
}

// relaySession pairs two relay clients and sends frame one way; it returns
// them, still connected.
func relaySession(t *testing.T, addr string, frame []byte) (a, b net.Conn) {
	t.Helper()
	var tok [transport.RelayTokenLen]byte
	tok[0] = 7
	join := func(side transport.Role, want ...transport.RelayStatus) (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", addr, testTimeout)
		must(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(testTimeout))
		_, err = c.Write(transport.AppendRelayHello(nil, tok, side))
		must(t, err)
		r := bufio.NewReader(c)
		expectStatus(t, r, want...)
		return c, r
	}
	a, ar := join(transport.RoleDialer, transport.RelayWaiting)
	b, br := join(transport.RoleAcceptor, transport.RelayWaiting, transport.RelayPaired)
	expectStatus(t, ar, transport.RelayPaired)
	must(t, transport.WriteRelayFrame(a, frame))
	buf := make([]byte, transport.MaxRelayFrame)
	n, err := transport.ReadRelayFrame(br, buf)
	must(t, err)
	if string(buf[:n]) != string(frame) {
		t.Fatalf("relayed %q, want %q", buf[:n], frame)
	}
	return a, b
}

func expectStatus(t *testing.T, r *bufio.Reader, want ...transport.RelayStatus) {
	t.Helper()
	for _, w := range want {
		got, err := r.ReadByte()
		must(t, err)
		if transport.RelayStatus(got) != w {
			t.Fatalf("relay status %q, want %q", transport.RelayStatus(got), w)
		}
	}
}

// TestMetricsThroughServer: a pairing, a STUN query and a relay session
// through a real server move the counters scraped from the metrics
// listener, and nothing that identifies a pairing appears there.
func TestMetricsThroughServer(t *testing.T) {
	rv := startRendezvous(t)
	sides := pair(t, rv.addr)
	queryStun(t, rv.stunAddr)
	frame := []byte("a datagram, relayed")
	relaySession(t, rv.addr, frame)

	got, body := scrape(t, rv.metricsURL)
	want := map[string]float64{
		"ferry_rendezvous_pairings_started_total":                           1,
		"ferry_rendezvous_pairings_completed_total":                         1,
		`ferry_rendezvous_pairings_failed_total{reason="lonely"}`:           0,
		`ferry_rendezvous_pairings_failed_total{reason="disconnected"}`:     0,
		"ferry_rendezvous_mailboxes_open":                                   0,
		"ferry_rendezvous_nameplates_in_use":                                0,
		`ferry_rendezvous_rate_limited_total{limit="requests"}`:             0,
		`ferry_rendezvous_store_duration_seconds_count{op="allocate"}`:      1,
		`ferry_rendezvous_store_duration_seconds_count{op="claim"}`:         2,
		`ferry_rendezvous_store_duration_seconds_count{op="add"}`:           2,
		`ferry_rendezvous_store_errors_total{op="add"}`:                     0,
		"ferry_rendezvous_stun_answers_total":                               1,
		"ferry_rendezvous_stun_refused_total":                               0,
		"ferry_rendezvous_relay_sessions_active":                            1,
		"ferry_rendezvous_relay_sessions_total":                             1,
		"ferry_rendezvous_relay_sessions_paired_total":                      1,
		"ferry_rendezvous_relay_bytes_total":                                float64(len(frame)),
		`ferry_rendezvous_relay_refused_total{reason="too_many_from_addr"}`: 0,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present: %v), want %v", series, g, ok, v)
		}
	}
	for _, series := range []string{"go_goroutines", "ferry_rendezvous_mailbox_connections"} {
		if _, ok := got[series]; !ok {
			t.Errorf("%s missing", series)
		}
	}
	if _, ok := got["process_start_time_seconds"]; !ok && runtime.GOOS == "linux" {
		t.Error("process_start_time_seconds missing")
	}
	for _, side := range sides {
		if strings.Contains(body, side) {
			t.Errorf("a side (%s) appears in the metrics", side)
		}
	}

	// /metrics only.
	resp, err := http.Get(strings.TrimSuffix(rv.metricsURL, "metrics") + "debug/pprof/")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/: %s, want 404", resp.Status)
	}
}

// failingStore fails every Add, with a store failure or a refusal.
type failingStore struct {
	mailbox.Store
	err error
}

func (s failingStore) Add(context.Context, string, mailbox.Message, int) error { return s.err }

// TestInstrumentStoreErrors: store failures are counted as errors; answers
// for the client (*mailbox.Error) and cancelled calls are not; every call
// is timed.
func TestInstrumentStoreErrors(t *testing.T) {
	m := NewMetrics()
	for _, err := range []error{errors.New("redis: connection refused"), mailbox.ErrMailboxFull, context.Canceled, nil} {
		st := m.InstrumentStore(failingStore{Store: mailbox.NewMemStore(), err: err})
		if got := st.Add(context.Background(), "m1", mailbox.Message{}, 1); got != err {
			t.Fatalf("Add = %v, want %v", got, err)
		}
	}
	if n := testutil.ToFloat64(m.storeErrs.WithLabelValues(opAdd)); n != 1 {
		t.Errorf("store errors = %v, want 1", n)
	}
	if n := testutil.CollectAndCount(m.storeTime, "ferry_rendezvous_store_duration_seconds"); n != len(storeOps) {
		t.Errorf("%d store duration series, want %d", n, len(storeOps))
	}
}
