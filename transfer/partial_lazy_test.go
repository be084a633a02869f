package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// smallFile makes a file entry for data with chunk size cs (tests of many
// files use small chunks to stay small).
func smallFile(path string, data []byte, cs int) *FileEntry {
	return &FileEntry{Path: path, Size: int64(len(data)), Mode: 0o644, ModTime: time.Unix(1_700_000_000, 0).UnixNano(), Chunks: wantChunks(data, cs)}
}

func smallChunk(data []byte, cs, i int) []byte {
	return data[i*cs : min((i+1)*cs, len(data))]
}

// manyContents returns n distinct contents of about size bytes.
func manyContents(seed uint64, n, size int) [][]byte {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, size/2+r.IntN(size/2+1)+1)
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		binary.LittleEndian.PutUint32(b, uint32(i)) // distinct
		out[i] = b
	}
	return out
}

// journalOnDisk returns the chunk indices the journal at path records, or
// nil if there is no journal.
func journalOnDisk(t *testing.T, path string) []int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < journalHeaderLen {
		t.Fatalf("%s: %d bytes, shorter than a header", path, len(raw))
	}
	var recs []int
	for off := journalHeaderLen; off+journalRecLen <= len(raw); off += journalRecLen {
		recs = append(recs, int(binary.LittleEndian.Uint32(raw[off:])))
	}
	return recs
}

// stateOf reports, for tests, whether a state's files are open and which
// records it still holds in memory.
func stateOf(p *PartialFile) (resident bool, pending []int) {
	st := p.st
	st.life.RLock()
	resident = st.data != nil
	st.life.RUnlock()
	st.mu.Lock()
	for _, i := range st.pending {
		pending = append(pending, int(i))
	}
	st.mu.Unlock()
	return resident, pending
}

func residentCount(s *PartialStore) int {
	s.lru.Lock()
	defer s.lru.Unlock()
	return s.resident.Len()
}

// checkResidentBound checks that no more states are resident than the
// bound, or than the states pinned by operations in flight (which may
// include idle-timer flushes still running).
func checkResidentBound(t *testing.T, s *PartialStore) {
	t.Helper()
	s.lru.Lock()
	defer s.lru.Unlock()
	pinned := 0
	for e := s.resident.Front(); e != nil; e = e.Next() {
		if e.Value.(*partState).pins > 0 {
			pinned++
		}
	}
	if n := s.resident.Len(); n > max(s.maxOpen, pinned) {
		t.Errorf("%d states resident, %d of them pinned, bound %d", n, pinned, s.maxOpen)
	}
}

// TestPartialOpenCreatesNothing is a refused offer: many files are opened
// (the receiver does so before it checks free space and destinations),
// queried, synced and closed without a chunk written. Nothing may be left
// in the partial folder, which Remove then removes.
func TestPartialOpenCreatesNothing(t *testing.T) {
	out := t.TempDir()
	s, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	contents := manyContents(30, n, 300)
	contents[n-1] = contents[0] // shared content too
	ps := make([]*PartialFile, n)
	for i := range n {
		ps[i], err = s.Open(smallFile(fmt.Sprintf("d/f%d", i), contents[i], 64), 64)
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		if ps[i].HaveCount() != 0 || ps[i].HaveBytes() != 0 || ps[i].Complete() || ps[i].Have(0) {
			t.Fatalf("new file %d claims chunks", i)
		}
	}
	pdir := filepath.Join(out, PartialDirName)
	if ents, _ := os.ReadDir(pdir); len(ents) != 0 {
		t.Fatalf("Open created %d entries in %s", len(ents), PartialDirName)
	}
	if n := residentCount(s); n != 0 {
		t.Fatalf("%d states hold open files before any write", n)
	}
	for i, p := range ps {
		if err := p.Sync(); err != nil {
			t.Fatalf("Sync %d: %v", i, err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	if ents, _ := os.ReadDir(pdir); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("a refused offer left %d entries in %s: %v", len(ents), PartialDirName, names[:min(5, len(names))])
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(pdir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s not removed after a refused offer: %v", PartialDirName, err)
	}
}

// TestPartialFirstWriteCreates checks that the files appear with the first
// chunk, and that a file opened but never written beside it leaves nothing.
func TestPartialFirstWriteCreates(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(31, 2*testChunk+5)
	f := testFile("w", data, 0o644, time.Now())
	idle := testFile("idle", randBytes(32, testChunk), 0o644, time.Now())
	p := mustOpen(t, s, f)
	q := mustOpen(t, s, idle)
	part := filepath.Join(out, PartialDirName, f.ContentID().String()+".part")
	jpath := filepath.Join(out, PartialDirName, f.ContentID().String()+".journal")
	if _, err := os.Stat(part); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("part file before the first write: %v", err)
	}
	if err := p.WriteChunk(1, chunkOf(data, 1)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(part); err != nil || fi.Size() != f.Size {
		t.Fatalf("part file after the first write: %v %v", fi, err)
	}
	if fi, err := os.Stat(jpath); err != nil || fi.Size() != journalHeaderLen {
		t.Fatalf("journal after the first write: %v %v", fi, err)
	}
	if err := p.MarkVerified(1); err != nil {
		t.Fatal(err)
	}
	p.Close()
	q.Close()
	ents, _ := os.ReadDir(filepath.Join(out, PartialDirName))
	if len(ents) != 2 {
		t.Fatalf("partial folder holds %d entries, want the part and journal of one file", len(ents))
	}
	s2, _ := OpenPartialStore(out)
	p = mustOpen(t, s2, f)
	if got := haveList(p, 3); !slices.Equal(got, []int{1}) {
		t.Fatalf("after reopen have %v", got)
	}
	p.Close()
}

// TestPartialFinalizeNeverWritten finalizes a file of which no chunk was
// written: every chunk that is not zeros is bad, and the files now exist to
// receive them.
func TestPartialFinalizeNeverWritten(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(33, 2*testChunk+1)
	copy(data[testChunk:2*testChunk], make([]byte, testChunk)) // chunk 1 is zeros
	f := testFile("z", data, 0o644, time.Now())
	p := mustOpen(t, s, f)
	dest := filepath.Join(out, "z")
	var bad *BadChunksError
	if err := p.Finalize(dest); !errors.As(err, &bad) || !slices.Equal(bad.Indices, []int{0, 2}) {
		t.Fatalf("Finalize of an unwritten file = %v, want bad chunks [0 2]", err)
	}
	if !p.Have(1) {
		t.Fatal("the zero chunk matches but was not marked")
	}
	for _, i := range bad.Indices {
		if err := p.WriteChunk(i, chunkOf(data, i)); err != nil {
			t.Fatal(err)
		}
		p.MarkVerified(i)
	}
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if b, _ := os.ReadFile(dest); string(b) != string(data) {
		t.Fatal("content differs")
	}
}

// TestPartialDormantFilesChanged evicts states and then removes, resizes
// or replaces their files behind the store's back: the next use must fail
// with a clear, sticky error rather than write into the wrong file or
// trust a bitmap that no longer describes the disk.
func TestPartialDormantFilesChanged(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	s.maxOpen = 1
	const cs = 100
	contents := manyContents(34, 4, 400)
	fs4 := make([]*FileEntry, 4)
	ps := make([]*PartialFile, 4)
	for i := range ps {
		fs4[i] = smallFile(fmt.Sprintf("f%d", i), contents[i], cs)
		var err error
		if ps[i], err = s.Open(fs4[i], cs); err != nil {
			t.Fatal(err)
		}
		defer ps[i].Close()
	}
	path := func(i int, ext string) string {
		return filepath.Join(out, PartialDirName, fs4[i].ContentID().String()+ext)
	}
	write := func(i, c int) error {
		if err := ps[i].WriteChunk(c, smallChunk(contents[i], cs, c)); err != nil {
			return err
		}
		return ps[i].MarkVerified(c)
	}
	for i := range ps {
		if err := write(i, 0); err != nil {
			t.Fatal(err)
		}
	}
	// All but the last are dormant now, their records flushed.
	for i := range 3 {
		if res, pend := stateOf(ps[i]); res || len(pend) > 0 {
			t.Fatalf("file %d: resident %v, pending %v after eviction", i, res, pend)
		}
		if got := journalOnDisk(t, path(i, ".journal")); !slices.Equal(got, []int{0}) {
			t.Fatalf("file %d: journal %v after eviction, want [0]", i, got)
		}
	}

	// 0: part file removed.
	if err := os.Remove(path(0, ".part")); err != nil {
		t.Fatal(err)
	}
	err := write(0, 1)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "removed or changed") || !strings.Contains(err.Error(), "f0") {
		t.Fatalf("write after the part file vanished: %v", err)
	}
	if err2 := ps[0].MarkVerified(2); err2 == nil {
		t.Error("the error is not sticky: MarkVerified succeeded")
	}
	if err2 := ps[0].Finalize(filepath.Join(out, "f0")); err2 == nil {
		t.Error("Finalize succeeded after the part file vanished")
	}

	// 1: part file truncated.
	if err := os.Truncate(path(1, ".part"), 10); err != nil {
		t.Fatal(err)
	}
	if err := write(1, 1); !errors.Is(err, errFileChanged) || !strings.Contains(err.Error(), "10 bytes") {
		t.Fatalf("write after the part file shrank: %v", err)
	}

	// 2: journal replaced by a copy of the same size (another file,
	// renamed over it so it cannot reuse the inode).
	raw, err := os.ReadFile(path(2, ".journal"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path(2, ".tmp"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path(2, ".tmp"), path(2, ".journal")); err != nil {
		t.Fatal(err)
	}
	if err := write(2, 1); !errors.Is(err, errFileChanged) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("write after the journal was replaced: %v", err)
	}

	// 3 was left alone on disk: it keeps working through evictions.
	if err := write(3, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := ps[i].Close(); err != nil {
			t.Errorf("Close of broken state %d: %v", i, err)
		}
	}
}

// TestPartialDormantIdleTimer: a record marked on a dormant state, with no
// further calls, reaches the journal through the idle timer, which reopens
// the files.
func TestPartialDormantIdleTimer(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	s.maxOpen = 1
	s.interval = 10 * time.Millisecond
	flushed := make(chan error, 4)
	s.timerFlushed = func(err error) { flushed <- err }
	const cs = 64
	contents := manyContents(35, 2, 200)
	fa, fb := smallFile("a", contents[0], cs), smallFile("b", contents[1], cs)
	pa, _ := s.Open(fa, cs)
	pb, _ := s.Open(fb, cs)
	defer pa.Close()
	defer pb.Close()
	if err := pa.WriteChunk(0, smallChunk(contents[0], cs, 0)); err != nil {
		t.Fatal(err)
	}
	if err := pb.WriteChunk(0, smallChunk(contents[1], cs, 0)); err != nil { // evicts a
		t.Fatal(err)
	}
	if res, _ := stateOf(pa); res {
		t.Fatal("a still resident with maxOpen 1")
	}
	// One record is not a batch: it waits for the timer.
	if err := pa.MarkVerified(0); err != nil {
		t.Fatal(err)
	}
	jpath := filepath.Join(out, PartialDirName, fa.ContentID().String()+".journal")
	if got := journalOnDisk(t, jpath); len(got) != 0 {
		t.Fatalf("record written before the timer: %v", got)
	}
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatalf("timer flush: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle timer did not flush a dormant state")
	}
	if got := journalOnDisk(t, jpath); !slices.Equal(got, []int{0}) {
		t.Fatalf("journal after the timer: %v, want [0]", got)
	}
	if resA, _ := stateOf(pa); !resA {
		t.Error("the timer flush did not make a resident")
	}
	if resB, _ := stateOf(pb); resB {
		t.Error("b not evicted when the timer reopened a")
	}
}

// TestPartialEvictionConcurrent writes, marks and syncs chunks of many
// files from several goroutines with a tiny resident bound and a short
// idle interval, so evictions race writes, marks, syncs and timer
// flushes. Every file must then finalize with the right content.
func TestPartialEvictionConcurrent(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	s.maxOpen = 3
	s.batch = 4
	s.interval = time.Millisecond
	const (
		n  = 40
		cs = 128
	)
	contents := manyContents(36, n, 8*cs)
	contents[n-1] = contents[1] // two entries share a state
	type job struct{ f, c int }
	var jobs []job
	ps := make([]*PartialFile, n)
	for i := range n {
		var err error
		if ps[i], err = s.Open(smallFile(fmt.Sprintf("f%d", i), contents[i], cs), cs); err != nil {
			t.Fatal(err)
		}
		for c := range chunkCount(int64(len(contents[i])), cs) {
			jobs = append(jobs, job{i, int(c)})
		}
	}
	rand.New(rand.NewPCG(36, 1)).Shuffle(len(jobs), func(a, b int) { jobs[a], jobs[b] = jobs[b], jobs[a] })
	work := make(chan job)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for j := range work {
				p := ps[j.f]
				if err := p.WriteChunk(j.c, smallChunk(contents[j.f], cs, j.c)); err != nil {
					errs <- err
					return
				}
				if err := p.MarkVerified(j.c); err != nil {
					errs <- err
					return
				}
				if (j.f+j.c+w)%5 == 0 {
					if err := p.Sync(); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	for k, j := range jobs {
		work <- j
		if k%50 == 0 {
			checkResidentBound(t, s)
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkResidentBound(t, s)
	idx := make(chan int)
	errs = make(chan error, n)
	wg = sync.WaitGroup{}
	for range 4 {
		wg.Go(func() {
			for i := range idx {
				if !ps[i].Complete() {
					errs <- fmt.Errorf("file %d: have %d chunks", i, ps[i].HaveCount())
					continue
				}
				if err := ps[i].Finalize(filepath.Join(out, fmt.Sprintf("f%d", i))); err != nil {
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
		t.Error(err)
	}
	for i := range n {
		if b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("f%d", i))); err != nil || string(b) != string(contents[i]) {
			t.Errorf("file %d differs (%v)", i, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(out, PartialDirName)); len(ents) != 0 {
		t.Errorf("leftovers: %d entries", len(ents))
	}
}
