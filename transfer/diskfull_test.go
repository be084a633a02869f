//go:build linux

package transfer

// A full download disk, on a small tmpfs the test mounts itself (root only;
// no network beyond loopback is touched).

import (
	"bytes"
	"context"
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

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of the given size ("4m") on a new temporary
// folder and unmounts it when the test ends, failed or not. It skips the
// test unless it runs as root with the right to mount.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (runs in CI, where tests run as root)")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size="+size+",mode=0755"); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			t.Skipf("needs the right to mount a tmpfs (CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	// Registered after t.TempDir, so it runs before the folder is removed.
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			// Still busy (a file left open by a failed test): detach it so
			// it goes away once closed, and the folder can be removed.
			if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
				t.Errorf("unmount %s: %v; %v", dir, err, err2)
			}
		}
	})
	return dir
}

// stateLog records the states a Sink reports.
type stateLog struct {
	mu     sync.Mutex
	states []State
}

func (l *stateLog) sink(next Sink) Sink {
	return func(e Event) {
		if e.Kind == EventState {
			l.mu.Lock()
			l.states = append(l.states, e.State)
			l.mu.Unlock()
		}
		if next != nil {
			next(e)
		}
	}
}

func (l *stateLog) saw(s State) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.states {
		if x == s {
			return true
		}
	}
	return false
}

// TestDiskFullBeforeAccept offers 16 MiB to a 4 MiB disk: the receiver must
// refuse before accepting, saying how much space is needed, and the sender
// must hear why.
func TestDiskFullBeforeAccept(t *testing.T) {
	mnt := mountTmpfs(t, "4m")
	out := filepath.Join(mnt, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	src := filepath.Join(t.TempDir(), "big.bin")
	writeRandomFile(t, src, size)
	m, sources, _, err := BuildManifest(context.Background(), []string{src}, DefaultChunkSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, rc := loopbackConns(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var sendStates, recvStates stateLog
	res := make(chan sendResult, 1)
	go func() {
		st, err := Send(ctx, sc, SendOptions{Manifest: m, Sources: sources, Sink: sendStates.sink(nil)})
		res <- sendResult{st, err}
	}()
	_, rerr := Receive(ctx, rc, ReceiveOptions{OutDir: out, Sink: recvStates.sink(nil)})
	s := waitResult(t, "Send", res)

	if KindOf(rerr) != KindDiskFull {
		t.Fatalf("Receive: kind %q, want %q: %v", KindOf(rerr), KindDiskFull, rerr)
	}
	need := fmt.Sprintf("needs %d more bytes", size)
	if !strings.Contains(rerr.Error(), need) || !strings.Contains(rerr.Error(), "free") {
		t.Errorf("Receive error does not say how much space is needed (%q): %v", need, rerr)
	}
	t.Logf("receiver: %v", rerr)
	if KindOf(s.err) != KindDiskFull {
		t.Errorf("Send: kind %q, want %q: %v", KindOf(s.err), KindDiskFull, s.err)
	}
	if !strings.Contains(fmt.Sprint(s.err), need) {
		t.Errorf("Send error does not pass on how much space is needed: %v", s.err)
	}
	if strings.Contains(fmt.Sprint(s.err), out) {
		t.Errorf("the receiver told the sender its local path %s: %v", out, s.err)
	}
	t.Logf("sender: %v", s.err)
	// Refused before accepting: no data moved either way.
	if recvStates.saw(StateReceiving) || sendStates.saw(StateSending) {
		t.Errorf("the offer was accepted: receiver states %v, sender states %v", recvStates.states, sendStates.states)
	}
	if _, err := os.Lstat(filepath.Join(out, "big.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("big.bin exists in the download folder: %v", err)
	}
	var used unix.Statfs_t
	if err := unix.Statfs(mnt, &used); err == nil {
		if u := (int64(used.Blocks) - int64(used.Bfree)) * int64(used.Bsize); u > 1<<20 {
			t.Errorf("%d bytes of the disk are used after a refused offer", u)
		}
	}
	if _, err := os.Stat(filepath.Join(out, PartialDirName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused offer left %s behind (%v)", PartialDirName, err)
	}
}

// TestDiskFullMidTransfer lets the free-space check pass, then fills the
// disk before any chunk is written: Receive must stop with KindDiskFull
// keeping what it verified, and once space is freed a second transfer must
// resume from it and complete.
func TestDiskFullMidTransfer(t *testing.T) {
	// The receiver wants the transfer plus freeSpaceMargin (16 MiB) free
	// before it accepts, so the disk is that large; the filler then leaves
	// only room for part of the file.
	const (
		size    = 3 << 20
		chunk   = 256 << 10
		leave   = 2 << 20 // free space left by the filler
		tmpSize = "24m"
	)
	mnt := mountTmpfs(t, tmpSize)
	out := filepath.Join(mnt, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	src := filepath.Join(t.TempDir(), "data.bin")
	writeRandomFile(t, src, size)
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	m, sources, _, err := BuildManifest(context.Background(), []string{src}, chunk, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The filler is written when the receiver reports it is receiving: after
	// prepare checked free space and sent ACCEPT, before the first data
	// stream is read (Sink is called synchronously). Accept would be too
	// early: it runs before the free-space check.
	var fillOnce sync.Once
	fill := func(e Event) {
		if e.Kind != EventState || e.State != StateReceiving {
			return
		}
		fillOnce.Do(func() {
			free, err := FreeSpace(out)
			if err != nil {
				t.Errorf("free space: %v", err)
				return
			}
			if err := writeZeros(filler, free-leave); err != nil {
				t.Errorf("filler: %v", err)
			}
			after, _ := FreeSpace(out)
			t.Logf("filler of %d bytes written: %d bytes were free, %d are", free-leave, free, after)
		})
	}

	sc, rc := loopbackConns(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := make(chan sendResult, 1)
	go func() {
		st, err := Send(ctx, sc, SendOptions{Manifest: m, Sources: sources})
		res <- sendResult{st, err}
	}()
	_, rerr := Receive(ctx, rc, ReceiveOptions{OutDir: out, Sink: fill})
	s := waitResult(t, "Send", res)
	if _, err := os.Stat(filler); err != nil {
		t.Fatalf("the filler was not written: %v", err)
	}
	if KindOf(rerr) != KindDiskFull || !errors.Is(rerr, syscall.ENOSPC) {
		t.Fatalf("Receive: kind %q, want %q wrapping ENOSPC: %v", KindOf(rerr), KindDiskFull, rerr)
	}
	t.Logf("receiver: %v", rerr)
	if s.err == nil {
		t.Fatal("Send succeeded although the receiver failed")
	}
	// The receiver sends ERROR{disk_full}, but only after its data streams
	// are cancelled, so the sender may fail on a stream write first.
	if k := KindOf(s.err); k != KindDiskFull {
		t.Logf("NOTE: the sender reports kind %q, not %q: %v", k, KindDiskFull, s.err)
	} else {
		if strings.Contains(fmt.Sprint(s.err), out) || strings.Contains(fmt.Sprint(s.err), PartialDirName) {
			t.Errorf("the receiver told the sender its local paths: %v", s.err)
		}
		t.Logf("sender: %v", s.err)
	}
	if _, err := os.Lstat(filepath.Join(out, "data.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data.bin was moved into place on a full disk: %v", err)
	}

	// The partial data is still there, and the journal vouches for some of it.
	fe := &m.Files[0]
	pdir := filepath.Join(out, PartialDirName)
	part := filepath.Join(pdir, fe.ContentID().String()+".part")
	journal := filepath.Join(pdir, fe.ContentID().String()+".journal")
	if fi, err := os.Stat(part); err != nil || fi.Size() != size {
		t.Fatalf("part file: %v %v", fi, err)
	}
	recs := journalRecords(t, journal)
	if len(recs) == 0 {
		t.Fatal("the journal records no verified chunk: nothing to resume")
	}
	pb, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range recs {
		if c < 0 || c >= fe.ChunkCount(chunk) {
			t.Fatalf("journal records chunk %d of %d", c, fe.ChunkCount(chunk))
		}
		if got := pb[c*chunk : min((c+1)*chunk, size)]; !bytes.Equal(got, want[c*chunk:min((c+1)*chunk, size)]) {
			t.Errorf("journal vouches for chunk %d, which does not hold its data", c)
		}
	}
	t.Logf("%d of %d chunks kept after the disk filled", len(recs), fe.ChunkCount(chunk))

	// Free the space; the same transfer again resumes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	sc2, rc2 := loopbackConns(t)
	sst, rst := transferOnce(t, sc2, rc2, []string{src}, out, chunk, DefaultStreams)
	var held int64
	for _, c := range slices.Compact(slices.Sorted(slices.Values(recs))) {
		held += int64(fe.ChunkLen(c, chunk))
	}
	if rst.Skipped == 0 || rst.Skipped != held {
		t.Errorf("resumed run skipped %d bytes, the journal held %d", rst.Skipped, held)
	}
	if sst.Skipped != rst.Skipped || rst.Skipped+rst.Moved != size {
		t.Errorf("stats: sender %+v, receiver %+v", sst, rst)
	}
	got, err := os.ReadFile(filepath.Join(out, "data.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("received file differs from the source (%v)", err)
	}
	if _, err := os.Lstat(pdir); !errors.Is(err, os.ErrNotExist) {
		ents, _ := os.ReadDir(pdir)
		t.Errorf("partial folder left after a completed transfer: %v", ents)
	}
}

// writeZeros writes a file of n zero bytes (allocated, not sparse).
func writeZeros(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	return f.Close()
}
