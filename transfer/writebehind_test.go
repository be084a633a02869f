package transfer

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestChunkWriterReadsOnWhileAWriteWaits: while the writer is stuck in a
// write (a disk pausing for a flush), the reader still gets buffers for
// the next writeBehindDepth chunks, then waits; the chunks are written in
// order once the write returns, and stop gives the budget back.
func TestChunkWriterReadsOnWhileAWriteWaits(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &receiver{m: &Manifest{ChunkSize: 64}, writeBudget: make(chan struct{}, writeBehindBudget)}
	events := make(chan recvEvent, 16)
	release := make(chan struct{})
	var written []int
	w := r.newChunkWriter(ctx, events, func(_ context.Context, _ chan<- recvEvent, fi, ci int, data []byte) error {
		if ci == 0 {
			<-release // the first write hangs until released
		}
		written = append(written, ci)
		return nil
	})
	b, err := w.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.write(b, b.payload, 0, 0)
	// Bounded, so that a reader made to wait fails the test, not hangs it.
	bounded, done := context.WithTimeout(ctx, 10*time.Second)
	defer done()
	for ci := 1; ci <= writeBehindDepth; ci++ {
		b, err := w.get(bounded)
		if err != nil {
			t.Fatalf("chunk %d while the first write waits: %v", ci, err)
		}
		w.write(b, b.payload, 0, ci)
	}
	// Every buffer is now queued or being written: the next get waits.
	short, stop := context.WithCancel(ctx)
	stop()
	if _, err := w.get(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with every buffer queued: %v, want it to wait", err)
	}
	if n := len(r.writeBudget); n != writeBehindDepth {
		t.Fatalf("budget taken: %d, want %d", n, writeBehindDepth)
	}
	close(release)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	if len(written) != writeBehindDepth+1 {
		t.Fatalf("written %v, want %d chunks", written, writeBehindDepth+1)
	}
	for i, ci := range written {
		if ci != i {
			t.Fatalf("written out of order: %v", written)
		}
	}
	if n := len(r.writeBudget); n != 0 {
		t.Fatalf("budget still taken after stop: %d", n)
	}
	if err := w.stop(); err != nil { // the reader's deferred call
		t.Fatalf("second stop: %v", err)
	}
}

// TestChunkWriterStopsAfterAFailure: a failed write is reported once, the
// chunks queued behind it are not written, and the reader's next get
// fails, so it stops reading.
func TestChunkWriterStopsAfterAFailure(t *testing.T) {
	ctx := t.Context()
	r := &receiver{m: &Manifest{ChunkSize: 64}, writeBudget: make(chan struct{}, writeBehindBudget)}
	events := make(chan recvEvent, 16)
	full := errors.New("no space left on device")
	release := make(chan struct{})
	writes := 0
	w := r.newChunkWriter(ctx, events, func(_ context.Context, _ chan<- recvEvent, fi, ci int, data []byte) error {
		writes++
		<-release
		return full
	})
	for ci := range 3 {
		b, err := w.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.write(b, b.payload, 0, ci)
	}
	close(release)
	ev := <-events
	if !errors.Is(ev.err, full) {
		t.Fatalf("event %+v, want the write's failure", ev)
	}
	if err := w.stop(); !errors.Is(err, full) {
		t.Fatalf("stop: %v, want the write's failure", err)
	}
	if writes != 1 {
		t.Fatalf("%d writes, want 1: nothing after a failure", writes)
	}
	if len(events) != 0 {
		t.Fatalf("%d more events, want the failure reported once", len(events))
	}
	if _, err := w.get(ctx); !errors.Is(err, full) {
		t.Fatalf("get after a failure: %v", err)
	}
}

// TestChunkWriterBudgetIsShared: a stream that finds the receiver's budget
// spent still reads, with the one buffer it has.
func TestChunkWriterBudgetIsShared(t *testing.T) {
	ctx := t.Context()
	r := &receiver{m: &Manifest{ChunkSize: 64}, writeBudget: make(chan struct{}, writeBehindBudget)}
	for range writeBehindBudget {
		r.writeBudget <- struct{}{} // other streams hold it all
	}
	events := make(chan recvEvent, 16)
	w := r.newChunkWriter(ctx, events, func(context.Context, chan<- recvEvent, int, int, []byte) error { return nil })
	for ci := range 10 {
		b, err := w.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.write(b, b.payload, 0, ci)
	}
	if w.extra != 0 {
		t.Fatalf("%d extra buffers with the budget spent", w.extra)
	}
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	if len(r.writeBudget) != writeBehindBudget {
		t.Fatal("stop gave back tokens it never took")
	}
}
