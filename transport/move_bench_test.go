package transport

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/vnet"
)

// Timing of BenchmarkThroughputAfterMove. The window is the 10 s:
// one run of the benchmark (four cases, each a warm-up, a window after
// the move and a window of a fresh connection) takes about 95 s.
const (
	// moveWarmup is how long the laptop streams on the old path before
	// the move: long enough for slow start to end even at 100 ms RTT
	// (about ten round trips from quic-go's initial window to its cap).
	moveWarmup = 3 * time.Second
	// moveWindow is how long throughput is measured after the move, and
	// on the fresh connection.
	moveWindow = 10 * time.Second
	// moveBucket is the resolution of the logged series.
	moveBucket = 500 * time.Millisecond
)

// Addresses of the move benchmark: the laptop's two networks and the
// server. All public, no NAT, so the server follows the laptop's move by
// passive migration alone.
var (
	moveLaptopOld = netip.MustParseAddrPort("198.18.1.10:5000")
	moveLaptopNew = netip.MustParseAddrPort("198.18.2.10:6000")
	moveServer    = netip.MustParseAddrPort("198.18.0.1:4000")
)

// moveBenchConfig is fastConfig with the production path timings: fast
// config's 50 ms validation retransmit, 300 ms hold-down and 200 ms
// retire grace are shorter than a 100 ms round trip allows, and the move
// itself is part of what is measured.
func moveBenchConfig() Config {
	c := fastConfig()
	c.ValidationTimeout = DefaultValidationTimeout
	c.ValidationRetransmit = DefaultValidationRetransmit
	c.ProbeInterval = DefaultProbeInterval
	c.MaxProbeInterval = DefaultMaxProbeInterval
	c.HoldDown = DefaultHoldDown
	c.RebindTimeout = DefaultRebindTimeout
	c.RetireGrace = DefaultRetireGrace
	c.IdleTimeout = DefaultIdleTimeout
	return c
}

// BenchmarkThroughputAfterMove measures throughput after a move against
// a fresh connection on the new path: whether the sender's quic-go starts
// its congestion control and RTT afresh on the new path (vconn.newPath)
// rather than carrying on with a window sized for the old one. Each case
// streams between a laptop and a server on the old path for moveWarmup,
// takes the old path down and calls the laptop's NetworkChanged, and
// counts what the receiver reads in the moveWindow that follows. As in a
// transfer, the sender accepts and the receiver dials; the laptop is the
// sender or the receiver. A fresh connection on the new path (new
// sockets, same link delay) is measured over the same window, from the
// moment its sender starts writing (the handshake is not counted; the
// move is). vnet has no bandwidth limit, so the round trip is what shapes
// congestion window growth.
func BenchmarkThroughputAfterMove(b *testing.B) {
	if testing.Short() {
		b.Skip("takes about 95 s")
	}
	for _, tc := range []struct {
		name           string
		oldRTT, newRTT time.Duration
		laptopSends    bool
	}{
		{"sender_moves_10ms_to_100ms", 10 * time.Millisecond, 100 * time.Millisecond, true},
		{"sender_moves_100ms_to_10ms", 100 * time.Millisecond, 10 * time.Millisecond, true},
		{"sender_moves_20ms_to_20ms", 20 * time.Millisecond, 20 * time.Millisecond, true},
		{"receiver_moves_10ms_to_100ms", 10 * time.Millisecond, 100 * time.Millisecond, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var moved, fresh, warm float64
			for range b.N {
				m, w := runMoved(b, tc.oldRTT, tc.newRTT, tc.laptopSends)
				f := runFresh(b, tc.newRTT)
				b.Logf("old path %.1f MB/s in the last second of the warm-up; %s", w, formatSeries(m, f))
				moved += m.rate()
				fresh += f.rate()
				warm += w
			}
			nf := float64(b.N)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(warm/nf, "old-MB/s")
			b.ReportMetric(moved/nf, "moved-MB/s")
			b.ReportMetric(fresh/nf, "fresh-MB/s")
			b.ReportMetric(moved/fresh, "moved/fresh")
		})
	}
}

// runMoved streams on the old path, moves the laptop, and returns the
// series of the window after the move and the old path's steady rate.
// As in a transfer, the sender accepts and the receiver dials: with
// laptopSends the laptop is the sender, otherwise the server is.
func runMoved(b *testing.B, oldRTT, newRTT time.Duration, laptopSends bool) (series, float64) {
	n := vnet.New(vnet.Options{Seed: 1})
	b.Cleanup(func() { n.Close() })
	n.SetLink(moveLaptopOld.Addr(), moveServer.Addr(), vnet.Link{Delay: oldRTT / 2})
	n.SetLink(moveLaptopNew.Addr(), moveServer.Addr(), vnet.Link{Delay: newRTT / 2})
	laptop := vnetSocket(b, moveBenchConfig(), listenAt(n, moveLaptopOld), listenAt(n, moveLaptopNew))
	server := vnetSocket(b, moveBenchConfig(), listenAt(n, moveServer))
	var cl, src, dst *Conn
	if laptopSends {
		var cs *Conn
		cs, cl = connectPair(b, server, laptop, []netip.AddrPort{moveServer}, []netip.AddrPort{moveLaptopOld})
		src, dst = cl, cs
	} else {
		var cs *Conn
		cl, cs = connectPair(b, laptop, server, nil, []netip.AddrPort{moveServer})
		src, dst = cs, cl
	}
	f := startFlow(b, src, dst, false)

	time.Sleep(moveWarmup - time.Second)
	before := f.received()
	time.Sleep(time.Second)
	warm := float64(f.received()-before) / 1e6

	sub, stop := cl.SubscribePath()
	defer stop()
	moveAt := time.Now()
	movedAfter := make(chan time.Duration, 1)
	go func() {
		for p := range sub {
			if p.Reason == ReasonRebound {
				movedAfter <- time.Since(moveAt)
				return
			}
		}
	}()
	n.SetLink(moveLaptopOld.Addr(), moveServer.Addr(), vnet.Link{Down: true})
	f.begin(moveAt)
	laptop.NetworkChanged()
	s := f.measure(n)
	stop()
	f.stop()
	select {
	case d := <-movedAfter:
		s.note = fmt.Sprintf("laptop's path moved %v after NetworkChanged", d.Round(time.Millisecond))
	default:
		s.note = "laptop's path did not move within the window"
	}
	closeAll(laptop, server, n)
	return s, warm
}

// runFresh measures a new connection on the new path.
func runFresh(b *testing.B, rtt time.Duration) series {
	n := vnet.New(vnet.Options{Seed: 1})
	b.Cleanup(func() { n.Close() })
	n.SetLink(moveLaptopNew.Addr(), moveServer.Addr(), vnet.Link{Delay: rtt / 2})
	laptop := vnetSocket(b, moveBenchConfig(), listenAt(n, moveLaptopNew))
	server := vnetSocket(b, moveBenchConfig(), listenAt(n, moveServer))
	cl, cs := connectPair(b, laptop, server, nil, []netip.AddrPort{moveServer})
	f := startFlow(b, cs, cl, true) // the acceptor sends, as in a transfer
	s := f.measure(n)
	f.stop()
	closeAll(laptop, server, n)
	return s
}

// closeAll releases one measurement's sockets and network at once, so the
// next measurement has the CPUs to itself (the Cleanups find them closed).
func closeAll(laptop, server *Socket, n *vnet.Network) {
	laptop.Close()
	server.Close()
	n.Close()
}

// flow streams from a laptop's Conn to a server's Conn on one stream until
// stopped, and counts what the server reads in moveBucket buckets from
// begin.
type flow struct {
	src, dst *Conn
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	start   time.Time // zero until begin
	total   int64
	buckets []int64
}

// startFlow starts the writer and reader; with measureNow the window
// begins before the writer's first byte.
func startFlow(b *testing.B, src, dst *Conn, measureNow bool) *flow {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flow{src: src, dst: dst, cancel: cancel}
	b.Cleanup(f.stop)
	if measureNow {
		f.begin(time.Now())
	}
	chunk := make([]byte, 64<<10)
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		s, err := src.OpenStream(ctx)
		if err != nil {
			return
		}
		defer s.CancelWrite(0)
		for ctx.Err() == nil {
			if _, err := s.Write(chunk); err != nil {
				return
			}
		}
	}()
	go func() {
		defer f.wg.Done()
		s, err := dst.AcceptStream(ctx)
		if err != nil {
			return
		}
		defer s.CancelRead(0)
		buf := make([]byte, 64<<10)
		for {
			k, err := s.Read(buf)
			f.add(k)
			if err != nil {
				return
			}
		}
	}()
	return f
}

// stop ends the writer and reader by closing both connections (a Write
// blocked on flow control only returns then) and waits for both. It may
// be called again.
func (f *flow) stop() {
	f.cancel()
	f.src.Close()
	f.dst.Close()
	f.wg.Wait()
}

func (f *flow) begin(t time.Time) {
	f.mu.Lock()
	f.start = t
	f.buckets = make([]int64, moveWindow/moveBucket)
	f.mu.Unlock()
}

func (f *flow) add(k int) {
	now := time.Now()
	f.mu.Lock()
	f.total += int64(k)
	if !f.start.IsZero() {
		if i := int(now.Sub(f.start) / moveBucket); i < len(f.buckets) {
			f.buckets[i] += int64(k)
		}
	}
	f.mu.Unlock()
}

func (f *flow) received() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

// measure waits out the window, sampling the sender's quic-go state at
// the end of each bucket, and returns the series with the window's
// packet drops: on vnet (a link down, a full socket queue), in ferry's
// queue to quic-go, and in quic-go's own per-connection queue of
// unprocessed packets (packets ferry handed the server's quic-go minus
// those it processed; up to 256 of them may still be queued).
func (f *flow) measure(n *vnet.Network) series {
	f.mu.Lock()
	start := f.start
	f.mu.Unlock()
	var dmu sync.Mutex
	var s series
	s.vnetDrops = map[string]int{}
	remove := n.Tap(func(p vnet.PacketInfo) {
		if p.Dropped {
			dmu.Lock()
			s.vnetDrops[p.Reason]++
			dmu.Unlock()
		}
	})
	quicQueued := func() int64 {
		return int64(f.dst.Stats().QUICPacketsIn) - int64(f.dst.qc.ConnectionStats().PacketsReceived)
	}
	lost0, ferry0, quic0 := f.src.qc.ConnectionStats().PacketsLost, f.src.Stats().QueueDrops+f.dst.Stats().QueueDrops, quicQueued()
	for i := range int(moveWindow / moveBucket) {
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * moveBucket)))
		st := f.src.qc.ConnectionStats()
		s.samples = append(s.samples, sample{cwnd: st.CongestionWindow, srtt: st.SmoothedRTT, lost: st.PacketsLost - lost0})
		s.minRTT = st.MinRTT
	}
	s.ferryDrops = f.src.Stats().QueueDrops + f.dst.Stats().QueueDrops - ferry0
	s.quicDrops = quicQueued() - quic0
	remove()
	time.Sleep(10 * time.Millisecond) // the reader's last add of the window
	f.mu.Lock()
	for i, k := range f.buckets {
		s.samples[i].bytes = k
	}
	f.mu.Unlock()
	return s
}

// series is one measured window.
type series struct {
	samples []sample
	minRTT  time.Duration // quic-go's min RTT at the end
	note    string

	// Packets dropped in the window (measure says where).
	vnetDrops  map[string]int
	ferryDrops uint64
	quicDrops  int64
}

// sample is one bucket: bytes the receiver read in it, and the sender's
// quic-go state at its end (packets lost counted from the window's start).
type sample struct {
	bytes int64
	cwnd  uint64
	srtt  time.Duration
	lost  uint64
}

// rate is the window's mean throughput in MB/s.
func (s series) rate() float64 {
	var sum int64
	for _, x := range s.samples {
		sum += x.bytes
	}
	return float64(sum) / 1e6 / moveWindow.Seconds()
}

// formatSeries lays out both windows, one line per quantity (testing keeps
// only the first ten lines of a benchmark's log).
func formatSeries(moved, fresh series) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s; per %v bucket, quic-go's state at its end:\n", moved.note, moveBucket)
	for _, x := range []struct {
		name string
		s    series
	}{{"moved", moved}, {"fresh", fresh}} {
		line := func(what string, v func(sample) string) {
			fmt.Fprintf(&sb, "%s %-8s", x.name, what)
			for _, smp := range x.s.samples {
				fmt.Fprintf(&sb, " %5s", v(smp))
			}
			sb.WriteByte('\n')
		}
		line("MB/s", func(m sample) string { return fmt.Sprintf("%.1f", float64(m.bytes)/1e6/moveBucket.Seconds()) })
		line("cwnd KB", func(m sample) string { return fmt.Sprint(m.cwnd / 1000) })
		line("srtt ms", func(m sample) string { return fmt.Sprint(m.srtt.Milliseconds()) })
		line("lost", func(m sample) string { return fmt.Sprint(m.lost) })
	}
	fmt.Fprintf(&sb, "min RTT at the end: moved %v, fresh %v; dropped: moved vnet %v ferry %d quic-go queue ~%d, fresh vnet %v ferry %d quic-go queue ~%d",
		moved.minRTT.Round(time.Millisecond), fresh.minRTT.Round(time.Millisecond),
		moved.vnetDrops, moved.ferryDrops, moved.quicDrops, fresh.vnetDrops, fresh.ferryDrops, fresh.quicDrops)
	return sb.String()
}
