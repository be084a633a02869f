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
	offTime time.Duration
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
		w.g.count(int(rate*gateTick.Seconds()), on && w.packs)
		w.now = w.now.Add(gateTick)
		w.g.tick(w.now)
	}
}

func TestCompressGateTurnsOffWhereTheCPUIsTheLimit(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs = 120e6, 200e6, true // loopback on two cores
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
	w.rateOn, w.rateOff, w.packs = 36e6, 12e6, true // text over 100 Mbit/s
	w.run(60 * time.Second)
	if !w.g.compressing() {
		t.Fatal("compression turned off on a slow link")
	}
	if share := w.offTime.Seconds() / 60; share > 0.05 {
		t.Errorf("sent uncompressed %.1f %% of a minute on a slow link; want the probes under 5 %%", share*100)
	}
}

func TestCompressGateNeverProbesDataThatDoesNotCompress(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs = 100e6, 200e6, false // random data
	w.run(gateFirst + gateMeasure + gateSettle + gateMeasure + gateTick)
	if !w.g.compressing() {
		t.Fatal("the first cycle did not end compressing although nothing compresses")
	}
	w.offTime = 0
	w.run(30 * time.Second)
	if w.offTime != 0 {
		t.Fatalf("compression was off for %v although nothing compressed", w.offTime)
	}
}

func TestCompressGateFollowsAChange(t *testing.T) {
	w := newGateWorld()
	w.rateOn, w.rateOff, w.packs = 120e6, 200e6, true
	w.run(20 * time.Second)
	if w.g.compressing() {
		t.Fatal("compressing on a CPU-bound path")
	}
	// The laptop moves to a hotspot: now the link is the limit.
	w.rateOn, w.rateOff = 36e6, 12e6
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
	w.rateOn, w.rateOff, w.packs = 100e6, 105e6, true // within the margin
	w.run(30 * time.Second)
	if !w.g.compressing() || w.g.flips != 0 {
		t.Fatalf("compressing %v, flips %d: within the margin compression stays on, sparing the link", w.g.compressing(), w.g.flips)
	}
}

func TestNilCompressGateAlwaysCompresses(t *testing.T) {
	var g *compressGate
	g.count(10, true)
	if !g.compressing() {
		t.Fatal("a nil gate must let every chunk be tried")
	}
}

// TestGateOffStillCompressesZeros: with the gate off, ordinary chunks go
// as they are, but a chunk of zeros is still compressed.
func TestGateOffStillCompressesZeros(t *testing.T) {
	g := newCompressGate(time.Now(), nil) // starts off
	if g.compressing() {
		t.Fatal("a new gate starts compressing")
	}
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
