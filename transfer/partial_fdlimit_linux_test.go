//go:build linux

package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lowerFDLimit lowers the soft RLIMIT_NOFILE of the test process to n for
// the rest of the test (ordinary desktop limits are 1024 or less; Go raises
// the soft limit to the hard one at start-up, which would hide the bug).
func lowerFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skipf("cannot read RLIMIT_NOFILE: %v", err)
	}
	lim := old
	lim.Cur = min(n, old.Cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
			t.Errorf("restoring RLIMIT_NOFILE: %v", err)
		}
	})
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	return len(ents)
}

// TestPartialManyFilesLowFDLimit receives a folder of 12,000 one-chunk
// files the way the receiver does: every file opened first, then written,
// marked and finalized from 4 goroutines, with at most 256 descriptors.
func TestPartialManyFilesLowFDLimit(t *testing.T) {
	lowerFDLimit(t, 256)
	out := t.TempDir()
	s, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	const (
		n    = 12000
		dirs = 40
	)
	contents := manyContents(40, n, 200)
	for i := 997; i < n; i += 997 {
		contents[i] = contents[0] // some entries share content
	}
	for d := range dirs {
		if err := os.Mkdir(filepath.Join(out, fmt.Sprintf("d%02d", d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rel := func(i int) string { return fmt.Sprintf("d%02d/f%05d", i%dirs, i) }
	fds0 := openFDs(t)
	ps := make([]*PartialFile, n)
	for i := range n {
		if ps[i], err = s.Open(smallFile(rel(i), contents[i], testChunk), testChunk); err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
	}
	if d := openFDs(t) - fds0; d > 4 {
		t.Fatalf("opening %d files holds %d more descriptors", n, d)
	}
	idx := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range idx {
				p := ps[i]
				err := p.WriteChunk(0, contents[i])
				if err == nil {
					err = p.MarkVerified(0)
				}
				if err == nil {
					err = p.Finalize(filepath.Join(out, rel(i)))
				}
				if e := p.Close(); err == nil {
					err = e
				}
				if err != nil {
					errs <- fmt.Errorf("file %d: %w", i, err)
				}
			}
		})
	}
	for i := range n {
		idx <- i
		if i%1000 == 0 {
			checkResidentBound(t, s)
		}
	}
	close(idx)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d files failed", failed, n)
	}
	for i := range n {
		b, err := os.ReadFile(filepath.Join(out, rel(i)))
		if err != nil || string(b) != string(contents[i]) {
			t.Fatalf("%s differs (%v)", rel(i), err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(out, PartialDirName)); len(ents) != 0 {
		t.Fatalf("leftovers: %d entries", len(ents))
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(out, PartialDirName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("partial folder not removed: %v", err)
	}
}

// TestPartialInterleavedEvictionsLowFDLimit writes many more files than
// the resident bound in an interleaved order (chunk 0 of every file, then
// chunk 1 of every file, ...), marking each chunk a round after it was
// written and before the file's next write, so every write reopens an
// evicted state and marks land on dormant states. With batching and the idle
// timer out of the way, only eviction and Close write journals: afterwards
// every dormant state's journal must hold all it had marked before its last
// eviction, and after Close, a fresh store must find every file complete.
func TestPartialInterleavedEvictionsLowFDLimit(t *testing.T) {
	lowerFDLimit(t, 256)
	out := t.TempDir()
	s, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	s.batch, s.interval = 1<<30, time.Hour
	const (
		n       = 1500
		cs      = 256
		chunks  = 3
		workers = 4
	)
	contents := make([][]byte, n)
	for i := range contents { // 3 chunks, the last mostly short
		contents[i] = randBytes(uint64(1000+i), chunks*cs-i%(cs-1))
	}
	fes := make([]*FileEntry, n)
	ps := make([]*PartialFile, n)
	for i := range n {
		fes[i] = smallFile(fmt.Sprintf("f%d", i), contents[i], cs)
		if ps[i], err = s.Open(fes[i], cs); err != nil {
			t.Fatal(err)
		}
	}
	fds0 := openFDs(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	peak := make([]int, workers)
	for w := range workers {
		wg.Go(func() {
			for round := range chunks + 1 {
				for i := w; i < n; i += workers {
					if round > 0 {
						if err := ps[i].MarkVerified(round - 1); err != nil {
							errs <- fmt.Errorf("file %d mark %d: %w", i, round-1, err)
							return
						}
					}
					if round < chunks {
						if err := ps[i].WriteChunk(round, smallChunk(contents[i], cs, round)); err != nil {
							errs <- fmt.Errorf("file %d chunk %d: %w", i, round, err)
							return
						}
					}
				}
				peak[w] = max(peak[w], residentCount(s))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d := openFDs(t) - fds0; d > 2*s.maxOpen+4 {
		t.Errorf("%d more descriptors open, bound %d states of 2", d, s.maxOpen)
	}
	if p := slices.Max(peak); p > s.maxOpen {
		t.Errorf("%d states resident at a round's end, bound %d", p, s.maxOpen)
	}
	dormant := 0
	for i, p := range ps {
		if !p.Complete() {
			t.Fatalf("file %d: %d chunks", i, p.HaveCount())
		}
		jpath := filepath.Join(s.dir, fes[i].ContentID().String()+".journal")
		disk := journalOnDisk(t, jpath)
		resident, pending := stateOf(p)
		all := slices.Sorted(slices.Values(append(slices.Clone(disk), pending...)))
		if !slices.Equal(all, []int{0, 1, 2}) {
			t.Fatalf("file %d: journal %v + pending %v, want each of 0 1 2 once", i, disk, pending)
		}
		if !resident {
			dormant++
			// Chunks 0 and 1 were marked before the last write (of chunk
			// 2) made the state resident, so the eviction that made it
			// dormant since must have written both records.
			if !slices.Contains(disk, 0) || !slices.Contains(disk, 1) {
				t.Fatalf("dormant file %d: journal %v misses records flushed by its eviction (pending %v)", i, disk, pending)
			}
		}
	}
	if dormant < n-s.maxOpen {
		t.Fatalf("only %d of %d states dormant", dormant, n)
	}
	for i, p := range ps {
		if err := p.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	if d := openFDs(t) - fds0; d > 0 {
		t.Errorf("%d descriptors still open after every handle was closed", d)
	}

	// A new run finds every file complete, and holds no descriptor for it.
	s2, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if ps[i], err = s2.Open(fes[i], cs); err != nil {
			t.Fatal(err)
		}
		if !ps[i].Complete() {
			t.Fatalf("file %d: after reopen have %v", i, haveList(ps[i], chunks))
		}
	}
	if d := openFDs(t) - fds0; d > 0 {
		t.Errorf("reopened states hold %d descriptors", d)
	}
	idx := make(chan int)
	errs = make(chan error, n)
	for range workers {
		wg.Go(func() {
			for i := range idx {
				if err := ps[i].Finalize(filepath.Join(out, fes[i].Path)); err != nil {
					errs <- fmt.Errorf("file %d: %w", i, err)
				}
				ps[i].Close()
			}
		})
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range n {
		if b, err := os.ReadFile(filepath.Join(out, fes[i].Path)); err != nil || string(b) != string(contents[i]) {
			t.Fatalf("file %d differs (%v)", i, err)
		}
	}
	if err := s2.Remove(); err != nil {
		t.Fatal(err)
	}
}
