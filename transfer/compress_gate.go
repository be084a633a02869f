package transfer

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// The compression gate: whether compressible chunks are compressed at all,
// decided for the whole transfer by measuring. Compression pays where the
// network is slower than zstd (any link up to a few hundred Mbit/s: text
// arrives several times faster); it costs where the CPU is the limit (two
// processes on one machine, a 10 Gbit/s LAN, a slow laptop), where zstd's
// own speed caps the transfer below what sending the bytes as they are
// would reach. Neither can be known in advance, and both change (a
// laptop moves from a LAN to a hotspot), so the gate measures goodput, the
// file bytes handed to QUIC per second, with compression on and off and
// keeps the faster, trying the other again after a hold that doubles each
// time the same answer comes back.
//
// Which chunks shrink is the compressor's business (compress.go); the gate
// only decides for chunks that would be tried, and decides nothing while
// little of what flows compresses (random data, media), where both modes
// are the same.

// Gate timing and thresholds. The gate starts compressing, the right
// choice on most links, and measures after gateFirst. While compressing, a
// measurement also tells how the workers spent their time: mostly waiting
// for QUIC to take what they compressed means the network is the limit,
// and sending more bytes could only be slower, so nothing is tried (a slow
// link never pays for a probe, and a congestion window still opening,
// which makes the workers wait, never makes the gate switch off). Mostly
// compressing means the CPU may be the limit: then the gate measures with
// compression off and keeps the faster. After a switch, settle lets chunks
// compressed (or not) before it drain. Holds start short and double while
// the same answer comes back. Sending as is, the workers' time says
// nothing (there is nothing to compress), so the gate then looks at
// goodput alone: as long as it holds up, nothing is tried, the hold still
// doubling; a drop (a slower link, where compressing may pay) or the
// longest hold brings a probe. The first call comes in the transfer's
// first second, when sending as is may not be up to speed yet: when it
// keeps compressing, the gate checks again after gateRecheck.
const (
	gateTick        = 50 * time.Millisecond
	gateFirst       = 100 * time.Millisecond
	gateSettle      = 100 * time.Millisecond
	gateMeasure     = 200 * time.Millisecond
	gateHoldMin     = 4 * time.Second
	gateHoldMax     = 32 * time.Second
	gateNoDataOff   = 2 * time.Second
	gateNetworkHold = time.Second
	gateRecheck     = 300 * time.Millisecond
	// gateWaitShare: above this share of their time waiting on QUIC, the
	// workers are held back by the network. Where the CPU is the limit
	// they wait too (QUIC needs the cores they compress on): two processes
	// on two cores measured 0.65 to 0.68, a 100 Mbit/s link about 0.95.
	gateWaitShare = 0.85
	// gateMargin: the other mode must be this much faster to win, so noise
	// does not flip the mode back and forth.
	gateMargin = 1.15
	// gateMinPacked: below this share of file bytes sent compressed while
	// compressing, there is nothing to decide.
	gateMinPacked = 0.25
)

// gateStep is what the gate is doing now.
type gateStep int

const (
	stepSettle  gateStep = iota // waiting for the pipeline to reflect the mode
	stepMeasure                 // measuring the current mode
	stepHold                    // keeping the decided mode
)

// compressGate is shared by a transfer's sending workers. Workers call
// compressing and count; one goroutine (run) calls tick.
type compressGate struct {
	on     atomic.Bool  // compress compressible chunks now
	sent   atomic.Int64 // file bytes handed to QUIC
	packed atomic.Int64 // of those, bytes of chunks sent compressed
	zipNs  atomic.Int64 // workers' time spent compressing
	waitNs atomic.Int64 // workers' time spent handing chunks to QUIC

	// Decision state, touched only by tick.
	step       gateStep
	until      time.Time  // end of the current step
	probing    bool       // this measurement is of the other mode
	mark       time.Time  // start of the measurement
	base       gateCounts // the counters at mark
	rate       [2]float64 // goodput measured this cycle, by mode (0 off, 1 on)
	hold       time.Duration
	lastWinner int // the mode the last decision kept, -1 before the first
	// offRate is the goodput sending as is when that won, raised by
	// later measurements that hold up.
	offRate float64
	flips   int // decisions that changed the mode, for tests and logs
	log     *slog.Logger
}

// newCompressGate returns a gate that starts compressing; the first
// measurement starts after gateFirst from now.
func newCompressGate(now time.Time, log *slog.Logger) *compressGate {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &compressGate{step: stepSettle, until: now.Add(gateFirst), hold: gateHoldMin, lastWinner: -1, log: log}
	g.on.Store(true)
	return g
}

// compressing reports whether workers should try to compress now.
func (g *compressGate) compressing() bool { return g == nil || g.on.Load() }

// count records n file bytes handed to QUIC, sent compressed or not, and
// how long the worker spent compressing them and handing them over.
func (g *compressGate) count(n int, zipped bool, zip, wait time.Duration) {
	if g == nil {
		return
	}
	g.sent.Add(int64(n))
	if zipped {
		g.packed.Add(int64(n))
	}
	g.zipNs.Add(int64(zip))
	g.waitNs.Add(int64(wait))
}

// gateCounts is a snapshot of the workers' counters.
type gateCounts struct{ sent, packed, zip, wait int64 }

// counts reads the counters.
func (g *compressGate) counts() gateCounts {
	return gateCounts{g.sent.Load(), g.packed.Load(), g.zipNs.Load(), g.waitNs.Load()}
}

// since is what the counters gained since base.
func (c gateCounts) since(base gateCounts) gateCounts {
	return gateCounts{c.sent - base.sent, c.packed - base.packed, c.zip - base.zip, c.wait - base.wait}
}

// run ticks the gate until ctx ends.
func (g *compressGate) run(ctx context.Context) {
	t := time.NewTicker(gateTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			g.tick(now)
		}
	}
}

func boolMode(on bool) int {
	if on {
		return 1
	}
	return 0
}

// tick advances the gate's state machine to now.
func (g *compressGate) tick(now time.Time) {
	if now.Before(g.until) {
		return
	}
	switch g.step {
	case stepSettle, stepHold:
		g.step = stepMeasure
		g.mark, g.until = now, now.Add(gateMeasure)
		g.base = g.counts()
	case stepMeasure:
		mode := boolMode(g.on.Load())
		d := g.counts().since(g.base)
		g.rate[mode] = float64(d.sent) / now.Sub(g.mark).Seconds()
		if mode == 1 && (d.sent == 0 || float64(d.packed) < gateMinPacked*float64(d.sent)) {
			// Little that flowed compresses: nothing to compare. Look
			// again later, compressing meanwhile (what compresses
			// later is then not held back).
			g.probing = false
			g.step, g.until = stepHold, now.Add(gateNoDataOff)
			return
		}
		waitShare := float64(d.wait) / float64(max(d.zip+d.wait, 1))
		if mode == 1 && !g.probing && waitShare > gateWaitShare {
			// Compressing, the workers mostly wait for QUIC to take
			// what they compressed: the network is the limit, and
			// sending more bytes could only be slower. Nothing to try.
			g.log.Debug("compression gate: the network is the limit", "goodput_MBps", int(g.rate[1]/1e6), "wait_share", waitShare)
			g.step, g.until = stepHold, now.Add(gateNetworkHold)
			return
		}
		if mode == 0 && !g.probing && g.lastWinner == 0 && g.hold < gateHoldMax && g.rate[0]*gateMargin >= g.offRate {
			// Sending as is goes as fast as when it won: what made
			// compression lose (the CPU) has not changed, and a probe
			// would only cost. A slower link shows as a drop here; a
			// probe comes anyway once the hold reaches its longest.
			g.offRate = max(g.offRate, g.rate[0])
			g.hold = min(2*g.hold, gateHoldMax)
			g.log.Debug("compression gate: sending as is holds up", "goodput_MBps", int(g.rate[0]/1e6), "hold", g.hold)
			g.step, g.until = stepHold, now.Add(g.hold)
			return
		}
		if !g.probing {
			g.log.Debug("compression gate: trying the other mode", "compress", mode == 0, "goodput_MBps", int(g.rate[mode]/1e6), "wait_share", waitShare)
			// Now the other mode.
			g.probing = true
			g.on.Store(mode == 0)
			g.step, g.until = stepSettle, now.Add(gateSettle)
			return
		}
		g.probing = false
		// Compression loses only to clearly faster sending as is: a close
		// call keeps it, sparing the link (metered, shared) for the same
		// speed.
		winner := 1
		if g.rate[0] > gateMargin*g.rate[1] {
			winner = 0
		}
		if winner == g.lastWinner {
			g.hold = min(2*g.hold, gateHoldMax)
		} else {
			if g.lastWinner >= 0 {
				g.flips++
			}
			g.hold = gateHoldMin
		}
		hold := g.hold
		if g.lastWinner < 0 && winner == 1 {
			// The first measurements come in the transfer's first
			// second, while the connection and the receiver are still
			// getting up to speed (sending as is measured 96 MB/s
			// there, 171 a few seconds later), and a first call that
			// keeps compressing would hold for most of a short
			// transfer: it is checked again soon. (After a 1 s hold,
			// text over loopback compressed 1.9 s instead of 0.6 s and
			// took a second longer.)
			hold = gateRecheck
		}
		g.lastWinner = winner
		if winner == 0 {
			g.offRate = g.rate[0]
		}
		g.log.Debug("compression gate", "compress", winner == 1, "goodput_on_MBps", int(g.rate[1]/1e6), "goodput_off_MBps", int(g.rate[0]/1e6), "hold", hold)
		g.on.Store(winner == 1)
		g.step, g.until = stepHold, now.Add(hold)
	}
}
