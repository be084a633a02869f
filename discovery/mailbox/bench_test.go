package mailbox

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/fdlimit"
)

// BenchmarkPairings runs batches of 2000 concurrent pairings against one
// server on loopback. Each pairing: A dials, allocates and claims; B dials
// and claims; each adds one message and receives the other's; both close
// happy. It reports pairings/s and the peak heap in use and memory obtained
// from the OS (client and server share the process, so both are counted).
func BenchmarkPairings(b *testing.B) {
	const pairings = 2000
	// 4000 client and 4000 server sockets, plus slack.
	fdlimit.Raise(b, 4*pairings+1000)
	ts := startServer(b, ServerConfig{MaxNameplatesPerIP: -1})

	var peakHeap, peakSys atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if ms.Sys > peakSys.Load() {
				peakSys.Store(ms.Sys)
			}
			select {
			case <-t.C:
			case <-stopSampling:
				return
			}
		}
	}()

	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := runPairings(ts.addr, pairings); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	close(stopSampling)
	<-sampled
	b.ReportMetric(float64(pairings*b.N)/elapsed.Seconds(), "pairings/s")
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peakSys.Load())/(1<<20), "peak-sys-MB")
}

// runPairings runs n concurrent pairings against addr and returns the first
// failure.
func runPairings(addr string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		nameplate := make(chan string, 1)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := pairSide(ctx, addr, true, nameplate, fmt.Sprintf("A%d", i)); err != nil {
				errs <- fmt.Errorf("pairing %d side A: %w", i, err)
				close(nameplate)
			}
		}()
		go func() {
			defer wg.Done()
			if err := pairSide(ctx, addr, false, nameplate, fmt.Sprintf("B%d", i)); err != nil {
				errs <- fmt.Errorf("pairing %d side B: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func pairSide(ctx context.Context, addr string, allocator bool, nameplate chan string, msg string) (err error) {
	c, err := Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			c.shutdown()
		}
	}()
	var np string
	if allocator {
		if np, err = c.Allocate(ctx); err != nil {
			return err
		}
		if err = c.Claim(ctx, np); err != nil {
			return err
		}
		nameplate <- np
	} else {
		var ok bool
		if np, ok = <-nameplate; !ok {
			return fmt.Errorf("side A failed")
		}
		if err = c.Claim(ctx, np); err != nil {
			return err
		}
	}
	if err = c.Add(ctx, "pake", []byte(msg)); err != nil {
		return err
	}
	got, err := c.Receive(ctx, "pake")
	if err != nil {
		return err
	}
	if len(got) == 0 || got[0] == msg[0] {
		return fmt.Errorf("received %q", got)
	}
	return c.Close(ctx, Happy)
}
