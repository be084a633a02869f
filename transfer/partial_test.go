package transfer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testFile makes a file entry for data with chunk size testChunk.
func testFile(path string, data []byte, mode uint32, mtime time.Time) *FileEntry {
	return &FileEntry{Path: path, Size: int64(len(data)), Mode: mode, ModTime: mtime.UnixNano(), Chunks: wantChunks(data, testChunk)}
}

func chunkOf(data []byte, i int) []byte {
	return data[i*testChunk : min((i+1)*testChunk, len(data))]
}

func mustOpen(t *testing.T, s *PartialStore, f *FileEntry) *PartialFile {
	t.Helper()
	p, err := s.Open(f, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func haveList(p *PartialFile, n int) []int {
	var l []int
	for i := range n {
		if p.Have(i) {
			l = append(l, i)
		}
	}
	return l
}

func TestPartialResume(t *testing.T) {
	out := t.TempDir()
	s, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(out, PartialDirName)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("partial dir: %v %v", fi, err)
	}
	data := randBytes(10, 5*testChunk+777) // 6 chunks, the last short
	f := testFile("a.bin", data, 0o644, time.Now())
	p := mustOpen(t, s, f)
	if p.HaveCount() != 0 || p.Complete() {
		t.Fatal("fresh file has chunks")
	}
	for _, i := range []int{0, 2, 5, 3} {
		if err := p.WriteChunk(i, chunkOf(data, i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 2, 5} {
		if err := p.MarkVerified(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.MarkVerified(2); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if err := p.WriteChunk(1, data[:10]); err == nil {
		t.Error("short chunk accepted")
	}
	if err := p.WriteChunk(6, data[:777]); err == nil {
		t.Error("out of range chunk accepted")
	}
	if err := p.MarkVerified(-1); err == nil {
		t.Error("MarkVerified(-1) accepted")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteChunk(1, chunkOf(data, 1)); err == nil {
		t.Error("write after close accepted")
	}

	id := f.ContentID().String()
	partPath := filepath.Join(out, PartialDirName, id+".part")
	jPath := filepath.Join(out, PartialDirName, id+".journal")
	if fi, err := os.Stat(partPath); err != nil || fi.Size() != f.Size {
		t.Fatalf("part file: %v %v", fi, err)
	}
	if fi, err := os.Stat(jPath); err != nil || fi.Size() != journalHeaderLen+3*4 {
		t.Fatalf("journal: %v %v", fi, err)
	}

	// Reopen (in a new store, as a new run would).
	s2, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	p = mustOpen(t, s2, f)
	if got := haveList(p, 6); !slices.Equal(got, []int{0, 2, 5}) {
		t.Fatalf("after reopen have %v", got)
	}
	if p.HaveBytes() != 2*testChunk+777 || p.HaveCount() != 3 {
		t.Fatalf("HaveBytes %d HaveCount %d", p.HaveBytes(), p.HaveCount())
	}
	p.Close()

	// A torn last record and an out-of-range index are ignored.
	jf, err := os.OpenFile(jPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	jf.Write([]byte{99, 0, 0, 0}) // index 99: out of range
	jf.Write([]byte{1, 0})        // torn
	jf.Close()
	p = mustOpen(t, s2, f)
	if got := haveList(p, 6); !slices.Equal(got, []int{0, 2, 5}) {
		t.Fatalf("after torn tail have %v", got)
	}
	// Appending after a torn tail stays aligned.
	if err := p.MarkVerified(3); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p = mustOpen(t, s2, f)
	if got := haveList(p, 6); !slices.Equal(got, []int{0, 2, 3, 5}) {
		t.Fatalf("after append have %v", got)
	}
	p.Close()

	// A header that does not match restarts the file.
	raw, err := os.ReadFile(jPath)
	if err != nil {
		t.Fatal(err)
	}
	raw[48]++ // chunk count
	if err := os.WriteFile(jPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	p = mustOpen(t, s2, f)
	if p.HaveCount() != 0 {
		t.Fatalf("mismatched header kept %d chunks", p.HaveCount())
	}
	p.Close()
	if b, _ := os.ReadFile(partPath); len(b) != len(data) || !isZero(b) {
		t.Fatalf("restarted part file not zeroed (len %d)", len(b))
	}
	if fi, _ := os.Stat(jPath); fi.Size() != journalHeaderLen {
		t.Fatalf("restarted journal size %d", fi.Size())
	}

	// A part file of the wrong size discards the journal too.
	p = mustOpen(t, s2, f)
	p.WriteChunk(0, chunkOf(data, 0))
	p.MarkVerified(0)
	p.Close()
	os.Truncate(partPath, 10)
	p = mustOpen(t, s2, f)
	if p.HaveCount() != 0 {
		t.Fatal("journal trusted over a truncated part file")
	}
	p.Close()
}

func TestPartialFinalize(t *testing.T) {
	out := t.TempDir()
	s, err := OpenPartialStore(out)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(11, 3*testChunk+5)
	mtime := time.Date(2021, 6, 7, 8, 9, 10, 123456789, time.UTC)
	f := testFile("x.bin", data, 0o640, mtime)
	p := mustOpen(t, s, f)
	for i := range 4 {
		if err := p.WriteChunk(i, chunkOf(data, i)); err != nil {
			t.Fatal(err)
		}
		if err := p.MarkVerified(i); err != nil {
			t.Fatal(err)
		}
	}
	if !p.Complete() {
		t.Fatal("not complete")
	}
	// An existing dest is never replaced.
	taken := filepath.Join(out, "taken.bin")
	os.WriteFile(taken, []byte("keep me"), 0o644)
	err = p.Finalize(taken)
	if !errors.Is(err, fs.ErrExist) || KindOf(err) != KindBadPath {
		t.Fatalf("Finalize onto existing file: %v", err)
	}
	if b, _ := os.ReadFile(taken); string(b) != "keep me" {
		t.Fatal("existing file replaced")
	}
	dest := filepath.Join(out, "x.bin")
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != string(data) {
		t.Fatalf("content differs: %v", err)
	}
	fi, err := os.Stat(dest)
	if err != nil || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("dest mode %v mtime %v, want 0640 %v (%v)", fi.Mode(), fi.ModTime(), mtime, err)
	}
	if err := p.Finalize(filepath.Join(out, "again")); err == nil {
		t.Error("second Finalize accepted")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(out, PartialDirName)); len(ents) != 0 {
		t.Fatalf("leftovers: %v", ents)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, PartialDirName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(".ferry-partial not removed")
	}
}

func TestPartialFinalizeBadChunks(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(12, 4*testChunk)
	f := testFile("y.bin", data, 0o666, time.Now())
	p := mustOpen(t, s, f)
	for i := range 4 {
		if i == 3 {
			continue // never written: must fail verification too
		}
		p.WriteChunk(i, chunkOf(data, i))
		p.MarkVerified(i)
	}
	p.Sync()
	// A later run resumes: what an earlier run wrote is checked again at
	// the end, from the disk. Corrupt chunk 1 there behind its back.
	p.Close()
	s, _ = OpenPartialStore(out)
	p = mustOpen(t, s, f)
	part := filepath.Join(out, PartialDirName, f.ContentID().String()+".part")
	pf, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf.WriteAt([]byte("garbage"), testChunk+100)
	pf.Close()

	dest := filepath.Join(out, "y.bin")
	err = p.Finalize(dest)
	var bad *BadChunksError
	if !errors.As(err, &bad) || !slices.Equal(bad.Indices, []int{1, 3}) {
		t.Fatalf("Finalize = %v, want bad chunks [1 3]", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "2 chunk(s)") || !strings.HasSuffix(msg, ": 1 3") {
		t.Errorf("message %q", msg)
	}
	if p.Have(1) || p.Have(3) || !p.Have(0) || !p.Have(2) || p.HaveBytes() != 2*testChunk {
		t.Fatalf("have %v", haveList(p, 4))
	}
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("dest created despite bad chunks")
	}
	// The journal was rewritten: a new run sees chunk 1 as missing.
	p.Close()
	s2, _ := OpenPartialStore(out)
	p = mustOpen(t, s2, f)
	if got := haveList(p, 4); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("after reopen have %v", got)
	}
	// Re-receiving them completes the file.
	for _, i := range bad.Indices {
		p.WriteChunk(i, chunkOf(data, i))
		p.MarkVerified(i)
	}
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dest); string(b) != string(data) {
		t.Fatal("content differs")
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v: group/other write should be dropped", fi.Mode())
	}
	p.Close()
}

// TestPartialFinalizeRereadsOnlyEarlierRuns: chunks this run verified in
// memory and wrote are not read back at the end (they would come from the
// page cache as written); chunks an earlier run left are, from the disk.
func TestPartialFinalizeRereadsOnlyEarlierRuns(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(14, 4*testChunk)
	f := testFile("w.bin", data, 0o644, time.Now())
	p := mustOpen(t, s, f)
	p.WriteChunk(0, chunkOf(data, 0))
	p.MarkVerified(0)
	p.Close()
	s, _ = OpenPartialStore(out)
	p = mustOpen(t, s, f)
	for i := 1; i < 4; i++ {
		p.WriteChunk(i, chunkOf(data, i))
		p.MarkVerified(i)
	}
	part := filepath.Join(out, PartialDirName, f.ContentID().String()+".part")
	pf, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf.WriteAt([]byte("garbage"), 100)             // the earlier run's chunk 0
	pf.WriteAt([]byte("garbage"), 2*testChunk+100) // this run's chunk 2
	pf.Close()
	var bad *BadChunksError
	if err := p.Finalize(filepath.Join(out, "w.bin")); !errors.As(err, &bad) || !slices.Equal(bad.Indices, []int{0}) {
		t.Fatalf("Finalize = %v, want bad chunks [0] (only the earlier run's chunk is read back)", err)
	}
	p.Close()
}

func TestPartialFinalizeMarksGoodUnmarkedChunks(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(13, 2*testChunk)
	f := testFile("z", data, 0o600, time.Now())
	p := mustOpen(t, s, f)
	p.WriteChunk(0, chunkOf(data, 0))
	p.WriteChunk(1, chunkOf(data, 1)) // written, not marked
	p.MarkVerified(0)
	if err := p.Finalize(filepath.Join(out, "z")); err != nil {
		t.Fatal(err)
	}
	p.Close()
}

func TestPartialEmptyFile(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	mtime := time.Unix(1_600_000_000, 0)
	f := testFile("empty", nil, 0o600, mtime)
	p := mustOpen(t, s, f)
	if !p.Complete() || p.HaveCount() != 0 || p.HaveBytes() != 0 || p.Sync() != nil {
		t.Fatal("empty file state")
	}
	dest := filepath.Join(out, "empty")
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dest)
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("dest %v %v", fi, err)
	}
	p.Close()
	p = mustOpen(t, s, f)
	if err := p.Finalize(dest); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("empty Finalize onto existing: %v", err)
	}
	p.Close()
	if ents, _ := os.ReadDir(filepath.Join(out, PartialDirName)); len(ents) != 0 {
		t.Fatalf("empty file left %v", ents)
	}
}

func TestPartialConcurrent(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(14, 200*testChunk+1)
	f := testFile("c", data, 0o644, time.Now())
	p := mustOpen(t, s, f)
	n := f.ChunkCount(testChunk)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				if err := p.WriteChunk(i, chunkOf(data, i)); err != nil {
					errs <- err
					return
				}
				if err := p.MarkVerified(i); err != nil {
					errs <- err
					return
				}
				p.Have(i)
				p.HaveBytes()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !p.Complete() || p.HaveBytes() != int64(len(data)) {
		t.Fatalf("have %d/%d", p.HaveCount(), n)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = mustOpen(t, s, f)
	if !p.Complete() {
		t.Fatalf("after reopen have %d/%d", p.HaveCount(), n)
	}
	if err := p.Finalize(filepath.Join(out, "c")); err != nil {
		t.Fatal(err)
	}
	p.Close()
}

func TestPartialJournalBatching(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	// A long interval so only the batch size triggers the first sync.
	s.batch, s.interval = 64, time.Hour
	data := randBytes(15, 70*testChunk)
	f := testFile("b", data, 0o644, time.Now())
	p := mustOpen(t, s, f)
	defer p.Close()
	jPath := filepath.Join(out, PartialDirName, f.ContentID().String()+".journal")
	jsize := func() int64 {
		fi, err := os.Stat(jPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for i := range 63 {
		p.WriteChunk(i, chunkOf(data, i))
		p.MarkVerified(i)
	}
	if got := jsize(); got != journalHeaderLen {
		t.Fatalf("journal written before a batch was full: %d", got)
	}
	p.WriteChunk(63, chunkOf(data, 63))
	p.MarkVerified(63)
	if got := jsize(); got != journalHeaderLen+64*4 {
		t.Fatalf("journal after 64 records: %d", got)
	}
	// The idle timer syncs a lone record.
	s.interval = 50 * time.Millisecond
	p.WriteChunk(64, chunkOf(data, 64))
	p.MarkVerified(64)
	deadline := time.Now().Add(3 * time.Second)
	for jsize() != journalHeaderLen+65*4 {
		if time.Now().After(deadline) {
			t.Fatalf("idle record not synced within 1 s: journal %d", jsize())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPartialJournalDurableLater: a batch of records reaches the journal
// at once, but is made durable (data fsync, then journal fsync) only by
// the durable timer, by Sync, or by closing; the workers that fill a batch
// never wait for an fsync.
func TestPartialJournalDurableLater(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	s.batch, s.interval, s.durable = 4, time.Hour, time.Hour
	durable := make(chan error, 4)
	s.durableFlushed = func(err error) { durable <- err }
	data := randBytes(17, 12*testChunk)
	f := testFile("d", data, 0o644, time.Now())
	p := mustOpen(t, s, f)
	jPath := filepath.Join(out, PartialDirName, f.ContentID().String()+".journal")
	st := p.st
	unsynced := func() (bool, bool) {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.unsynced, st.syncTimer != nil
	}
	mark := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := p.WriteChunk(i, chunkOf(data, i)); err != nil {
				t.Fatal(err)
			}
			if err := p.MarkVerified(i); err != nil {
				t.Fatal(err)
			}
		}
	}

	mark(0, 4)
	if got := journalOnDisk(t, jPath); len(got) != 4 {
		t.Fatalf("journal after a full batch: %v, want 4 records", got)
	}
	if u, armed := unsynced(); !u || !armed {
		t.Fatalf("after a batch: unsynced %v, durable timer armed %v; want the sync left to the timer", u, armed)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if u, armed := unsynced(); u || armed {
		t.Fatalf("after Sync: unsynced %v, durable timer armed %v", u, armed)
	}

	s.durable = 20 * time.Millisecond
	mark(4, 8)
	select {
	case err := <-durable:
		if err != nil {
			t.Fatalf("durable flush: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the durable timer did not sync the batch")
	}
	if u, _ := unsynced(); u {
		t.Fatal("still unsynced after the durable timer's flush")
	}

	s.durable = time.Hour
	mark(8, 12)
	if u, _ := unsynced(); !u {
		t.Fatal("a new batch did not wait for a durable sync")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if u, armed := unsynced(); u || armed {
		t.Fatalf("after Close: unsynced %v, durable timer armed %v", u, armed)
	}
	if got := journalOnDisk(t, jPath); len(got) != 12 {
		t.Fatalf("journal after Close: %v, want 12 records", got)
	}
}

func TestPartialSharedContent(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(16, 2*testChunk+3)
	fa := testFile("a/LICENSE", data, 0o644, time.Unix(1, 0))
	fb := testFile("b/LICENSE", data, 0o600, time.Unix(2, 0))
	pa := mustOpen(t, s, fa)
	pb := mustOpen(t, s, fb)
	for i := range 3 {
		pa.WriteChunk(i, chunkOf(data, i))
		pa.MarkVerified(i)
	}
	if !pb.Complete() {
		t.Fatal("second handle does not see shared chunks")
	}
	da, db := filepath.Join(out, "a"), filepath.Join(out, "b")
	if err := pa.Finalize(da); err != nil {
		t.Fatal(err)
	}
	if err := pb.Finalize(db); err != nil {
		t.Fatal(err)
	}
	pa.Close()
	pb.Close()
	for _, c := range []struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}{{da, 0o644, time.Unix(1, 0)}, {db, 0o600, time.Unix(2, 0)}} {
		b, err := os.ReadFile(c.path)
		fi, _ := os.Stat(c.path)
		if err != nil || string(b) != string(data) || fi.Mode().Perm() != c.mode || !fi.ModTime().Equal(c.mtime) {
			t.Errorf("%s: %v mode %v mtime %v", c.path, err, fi.Mode(), fi.ModTime())
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(out, PartialDirName)); len(ents) != 0 {
		t.Fatalf("leftovers: %v", ents)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 3 {
		t.Fatalf("out has %v", ents)
	}
}

func TestPartialSharedOneAbandoned(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(17, testChunk)
	pa := mustOpen(t, s, testFile("a", data, 0o644, time.Now()))
	pb := mustOpen(t, s, testFile("b", data, 0o644, time.Now()))
	pa.WriteChunk(0, data)
	pa.MarkVerified(0)
	if err := pa.Finalize(filepath.Join(out, "a")); err != nil {
		t.Fatal(err)
	}
	pb.Close() // b not finalized: its data must survive for a later run
	pa.Close()
	pc := mustOpen(t, s, testFile("b", data, 0o644, time.Now()))
	if !pc.Complete() {
		t.Fatal("abandoned shared data lost")
	}
	if err := pc.Finalize(filepath.Join(out, "b")); err != nil {
		t.Fatal(err)
	}
	pc.Close()
}

func TestPartialDiskFullKind(t *testing.T) {
	err := ioErr("writing", "/x", &fs.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC})
	if KindOf(err) != KindDiskFull || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("ENOSPC: %v kind %q", err, KindOf(err))
	}
	if err := ioErr("w", "/x", fmt.Errorf("x: %w", syscall.EDQUOT)); KindOf(err) != KindDiskFull {
		t.Fatalf("EDQUOT: kind %q", KindOf(err))
	}
	if err := ioErr("w", "/x", syscall.EIO); KindOf(err) != KindInternal {
		t.Fatalf("EIO: kind %q", KindOf(err))
	}
}

func TestOpenPartialStoreErrors(t *testing.T) {
	if _, err := OpenPartialStore(filepath.Join(t.TempDir(), "missing")); KindOf(err) != KindNotFound {
		t.Errorf("missing dir: %v", err)
	}
	out := t.TempDir()
	if err := os.Symlink(t.TempDir(), filepath.Join(out, PartialDirName)); err == nil {
		if _, err := OpenPartialStore(out); KindOf(err) != KindBadPath {
			t.Errorf("symlinked partial dir: %v", err)
		}
	}
}

func TestFreeSpace(t *testing.T) {
	n, err := FreeSpace(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n < -1 {
		t.Fatalf("FreeSpace = %d", n)
	}
	if _, err := FreeSpace(filepath.Join(t.TempDir(), "missing")); err == nil && n != -1 {
		t.Error("FreeSpace of a missing folder succeeded")
	}
}

func TestPartialReadOnlyMode(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(18, testChunk+1)
	f := testFile("ro", data, 0o444, time.Now())
	p := mustOpen(t, s, f)
	p.WriteChunk(0, chunkOf(data, 0))
	p.MarkVerified(0)
	p.Close()
	// A crash inside Finalize can leave the part file read-only.
	part := filepath.Join(out, PartialDirName, f.ContentID().String()+".part")
	if err := os.Chmod(part, 0o444); err != nil {
		t.Fatal(err)
	}
	p = mustOpen(t, s, f)
	if !p.Have(0) {
		t.Fatal("lost chunk 0")
	}
	p.WriteChunk(1, chunkOf(data, 1))
	p.MarkVerified(1)
	dest := filepath.Join(out, "ro")
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("dest %v %v", fi, err)
	}
}

func TestPartialFinalizeOtherFilesystem(t *testing.T) {
	other, err := os.MkdirTemp("/dev/shm", "ferry-test-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	defer os.RemoveAll(other)
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(19, 2*testChunk+9)
	mtime := time.Unix(1_500_000_000, 0)
	f := testFile("x", data, 0o640, mtime)
	p := mustOpen(t, s, f)
	for i := range 3 {
		p.WriteChunk(i, chunkOf(data, i))
		p.MarkVerified(i)
	}
	dest := filepath.Join(other, "x")
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	p.Close()
	b, err := os.ReadFile(dest)
	fi, _ := os.Stat(dest)
	if err != nil || string(b) != string(data) || fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("dest: %v mode %v mtime %v", err, fi.Mode(), fi.ModTime())
	}
	if ents, _ := os.ReadDir(filepath.Join(out, PartialDirName)); len(ents) != 0 {
		t.Fatalf("leftovers: %v", ents)
	}
	if ents, _ := os.ReadDir(other); len(ents) != 1 {
		t.Fatalf("temp files left beside dest: %v", ents)
	}
}

func TestPartialFinalizeFailedMoveKeepsState(t *testing.T) {
	out := t.TempDir()
	s, _ := OpenPartialStore(out)
	data := randBytes(20, testChunk+2)
	f := testFile("m", data, 0o444, time.Now())
	p := mustOpen(t, s, f)
	for i := range 2 {
		p.WriteChunk(i, chunkOf(data, i))
		p.MarkVerified(i)
	}
	if err := p.Finalize(filepath.Join(out, "no", "such", "dir", "m")); err == nil {
		t.Fatal("Finalize into a missing folder succeeded")
	}
	if !p.Complete() {
		t.Fatal("state lost after a failed move")
	}
	if err := p.WriteChunk(0, chunkOf(data, 0)); err != nil {
		t.Fatalf("handle unusable after a failed move: %v", err)
	}
	dest := filepath.Join(out, "m")
	if err := p.Finalize(dest); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if b, _ := os.ReadFile(dest); string(b) != string(data) {
		t.Fatal("content differs")
	}
}

// FuzzJournal loads arbitrary bytes as a file's resume journal (a crash, a
// full disk or a curious user can leave anything there): opening must not
// fail or panic, must claim only chunks that exist, and a journal that is
// not exactly ferry's own for this content must claim nothing.
func FuzzJournal(f *testing.F) {
	data := randBytes(11, 3*testChunk+5) // 4 chunks
	entry := testFile("a.bin", data, 0o644, time.Unix(1, 0))
	id := entry.ContentID()

	// Seeds: a real journal with chunks 0 and 3, torn, and foreign.
	seedDir := f.TempDir()
	s, err := OpenPartialStore(seedDir)
	if err != nil {
		f.Fatal(err)
	}
	p, err := s.Open(entry, testChunk)
	if err != nil {
		f.Fatal(err)
	}
	for _, i := range []int{0, 3} {
		if err := p.WriteChunk(i, chunkOf(data, i)); err != nil {
			f.Fatal(err)
		}
		if err := p.MarkVerified(i); err != nil {
			f.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		f.Fatal(err)
	}
	real, err := os.ReadFile(filepath.Join(seedDir, PartialDirName, id.String()+".journal"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add(real[:len(real)-1])
	f.Add(append(append([]byte(nil), real...), 0xff, 0xff, 0xff, 0x7f))
	f.Add(real[:journalHeaderLen])
	f.Add([]byte("not a journal"))

	f.Fuzz(func(t *testing.T, journal []byte) {
		out := t.TempDir()
		dir := filepath.Join(out, PartialDirName)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id.String()+".journal"), journal, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id.String()+".part"), make([]byte, len(data)), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenPartialStore(out)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Open(entry, testChunk)
		if err != nil {
			t.Fatalf("opening with a journal of %d bytes: %v", len(journal), err)
		}
		defer p.Close()
		n := len(entry.Chunks)
		if c := p.HaveCount(); c < 0 || c > n || len(haveList(p, n)) != c {
			t.Fatalf("journal claims %d chunks of %d (%v)", c, n, haveList(p, n))
		}
		if len(journal) < journalHeaderLen || !bytes.Equal(journal[:journalHeaderLen], real[:journalHeaderLen]) {
			if c := p.HaveCount(); c != 0 {
				t.Fatalf("a foreign journal claims %d chunks", c)
			}
		}
	})
}
