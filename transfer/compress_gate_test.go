package transfer

import (
	"testing"
	"time"
)

// gateWorld drives a compressGate with simulated time: goodput in each mode
// (file bytes per second) and how much of what is compressed shrinks.
type gateWorld struct {
	g       *compressGate
	now     time.Time
	rateOn  float64 // goodput while compressing
	rateOff float64 // goodput while sending as is
	packs   bool    // the data compresses
	// waitShare is the share of the workers' time spent waiting for QUIC
	// while compressing: high where the network is the limit.
	waitShare float64
	offTime   time.Duration
}

func newGateWorld() *gateWorld {
	now := time.Unix(1_700_000_000, 0)
	return &gateWorld{g: newCompressGate(now, nil), now: now}
}

// run advances the world by d in gateTick steps.
func (w *gateWorld) run(d time.Duration) {
	for end := w.now.Add(d); w.now.Before(end); {
		on := w.g.compressing()
		rate := w.rateOff
		if on {
			rate = w.rateOn
		} else {
			w.offTime += gateTick
		}
		zip, wait := time.Duration(0), gateTick
		if on && w.packs {
			wait = time.Duration(w.waitShare * float64(gateTick))
			zip = gateTick - wait
		}
		w.g.count(int(rate*gateTick.Seconds()), on && w.packs, zip, wait)
		w.now = w.now.Add(gateTick)
		w.g.tick(w.now)
	}
}

func TestCompressGateTurnsOffWhereTheCPUIsTheLimit(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs, w.waitShare = 120e6, 200e6, true, 0.3 // loopback on two cores
	w.run(2 * time.Second)
	if w.g.compressing() {
		t.Fatal("still compressing after 2 s although sending as is is 1.7x faster")
	}
	w.offTime = 0
	w.run(60 * time.Second)
	if share := w.offTime.Seconds() / 60; share < 0.95 {
		t.Errorf("compression off only %.0f %% of the next minute; want the re-checks to cost under 5 %%", share*100)
	}
	if w.g.flips != 0 {
		t.Errorf("%d flips in a steady world", w.g.flips)
	}
}

func TestCompressGateStaysOnWhereTheLinkIsTheLimit(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs, w.waitShare = 36e6, 12e6, true, 0.9 // text over 100 Mbit/s
	w.run(60 * time.Second)
	if !w.g.compressing() {
		t.Fatal("compression turned off on a slow link")
	}
	if w.offTime != 0 {
		t.Errorf("sent uncompressed for %v on a link that keeps the workers waiting; want no probes", w.offTime)
	}
	// Were the workers busy compressing, the gate would check whether
	// sending as is is faster, and find it is not.
	w.waitShare = 0.3
	w.run(60 * time.Second)
	if !w.g.compressing() || w.g.flips != 0 {
		t.Fatalf("compressing %v, flips %d on a slow link", w.g.compressing(), w.g.flips)
	}
	if share := w.offTime.Seconds() / 60; share > 0.05 {
		t.Errorf("sent uncompressed %.1f %% of a minute on a slow link; want the probes under 5 %%", share*100)
	}
}

func TestCompressGateNeverProbesDataThatDoesNotCompress(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs, w.waitShare = 100e6, 200e6, false, 0.3 // random data
	w.run(30 * time.Second)
	if w.offTime != 0 {
		t.Fatalf("compression was off for %v although nothing compressed", w.offTime)
	}
}

func TestCompressGateFollowsAChange(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs, w.waitShare = 120e6, 200e6, true, 0.3
	w.run(20 * time.Second)
	if w.g.compressing() {
		t.Fatal("compressing on a CPU-bound path")
	}
	// The laptop moves to a hotspot: now the link is the limit.
	w.rateOn, w.rateOff, w.waitShare = 36e6, 12e6, 0.9
	w.run(gateHoldMax + 2*time.Second)
	if !w.g.compressing() {
		t.Fatal("still not compressing a hold after the link became the limit")
	}
	if w.g.flips != 1 {
		t.Errorf("flips = %d, want 1", w.g.flips)
	}
}

func TestCompressGateIgnoresNoise(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs, w.waitShare = 100e6, 105e6, true, 0.3 // within the margin
	w.run(30 * time.Second)
	// Off only while probing: within the margin compression stays on,
	// sparing the link.
	if share := w.offTime.Seconds() / 30; w.g.flips != 0 || share > 0.1 {
		t.Fatalf("flips %d, compression off %.0f %% of the time: a 5 %% difference must not switch", w.g.flips, share*100)
	}
}

// TestCompressGateChecksAFirstCallAgain: the first probe of sending as is
// comes in the transfer's first second, when it may measure low; a first
// call for compression is measured again within seconds, not held for a
// whole hold (on loopback, 1 s of a 6 s transfer).
func TestCompressGateChecksAFirstCallAgain(t *testing.T) {
	for _, early := range []float64{96e6, 142e6} { // measured on loopback: below compressing, and within the margin
		w := newGateWorld()
		w.rateOn, w.rateOff, w.packs, w.waitShare = 131e6, early, true, 0.6
		w.run(gateFirst + gateMeasure + gateSettle + gateMeasure + gateTick)
		if !w.g.compressing() {
			t.Fatalf("sending as is at %.0f MB/s: compression lost the first call", early/1e6)
		}
		w.rateOff = 205e6 // sending as is got up to speed
		// A recheck (hold, measure compressing, settle, measure sending
		// as is) within a second: each second compressing on a path
		// where the CPU is the limit costs a third of the speed.
		w.run(time.Second)
		if w.g.compressing() {
			t.Errorf("sending as is at %.0f MB/s first: still compressing 1 s after the first call, although sending as is is now 1.6x faster", early/1e6)
		}
	}
}

func TestNilCompressGateAlwaysCompresses(t *testing.T) {
	var g *compressGate
	g.count(10, true, time.Millisecond, time.Millisecond)
	if !g.compressing() {
		t.Fatal("a nil gate must let every chunk be tried")
	}
}

// TestGateOffStillCompressesZeros: with the gate off, ordinary chunks go
// as they are, but a chunk of zeros is still compressed.
func TestGateOffStillCompressesZeros(t *testing.T) {
	g := newCompressGate(time.Now(), nil)
	g.on.Store(false)
	c, err := newCompressor(newFileCompressibility(1), g)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if _, packed := c.compress(0, 0, wordSalad(DefaultChunkSize)); packed {
		t.Error("text was compressed with the gate off")
	}
	if p, packed := c.compress(0, 1, make([]byte, DefaultChunkSize)); !packed || len(p) > 1024 {
		t.Errorf("zeros with the gate off: compressed %v, %d bytes", packed, len(p))
	}
}

// TestCompressGateDoesNotProbeWhileSendingAsIsHoldsUp: once sending as is
// won on a CPU-bound path, compression is not tried again while goodput
// stays where it was (each probe costs a third of the speed for a moment),
// but it is as soon as goodput drops.
func TestCompressGateDoesNotProbeWhileSendingAsIsHoldsUp(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs, w.waitShare = 146e6, 210e6, true, 0.68 // measured on loopback
	w.run(time.Second)
	if w.g.compressing() {
		t.Fatal("still compressing after 1 s although sending as is is faster")
	}
	w.offTime = 0
	w.run(25 * time.Second)
	if w.offTime != 25*time.Second {
		t.Fatalf("compression tried for %v in 25 s of unchanged goodput; want none", 25*time.Second-w.offTime)
	}
	// Sending as is slows down by half (another program takes a core,
	// or the link got slower): now compression is tried again.
	w.rateOff = 105e6
	w.offTime = 0
	w.run(20 * time.Second)
	if w.offTime == 20*time.Second {
		t.Fatal("goodput halved and compression was never tried again")
	}
}
