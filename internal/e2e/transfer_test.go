package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// jsonEvent is one --json line; fields of every event kind.
type jsonEvent struct {
	Event        string `json:"event"`
	Code         string `json:"code"`
	Files        int    `json:"files"`
	Bytes        int64  `json:"bytes"`
	Total        int64  `json:"total"`
	Path         string `json:"path"`
	Peer         string `json:"peer"`
	SkippedBytes int64  `json:"skipped_bytes"`
	WireBytes    int64  `json:"wire_bytes"`
	Kind         string `json:"kind"`
	Message      string `json:"message"`
	File         string `json:"file"`
	Reason       string `json:"reason"`
	Type         string `json:"type"`
	Text         string `json:"text"`
	// At is when the test read the event (not part of the JSON).
	At time.Time `json:"-"`
}

// ferryProc is a running `ferry send|receive --json` whose events are
// collected as they arrive.
type ferryProc struct {
	cmd     *exec.Cmd
	started time.Time
	mu      sync.Mutex
	events  []jsonEvent
	stderr  bytes.Buffer
	notify  chan jsonEvent
	done    chan struct{}
	exit    int
}

// startFerry starts the real binary with --json and the loopback-only
// flags every e2e test uses: a rendezvous server on 127.0.0.1, no LAN
// multicast, a loopback transfer socket.
func startFerry(t testing.TB, rendezvous string, args ...string) *ferryProc {
	t.Helper()
	full := append([]string{args[0], "--json", "--no-lan", "--rendezvous", rendezvous, "--listen", "127.0.0.1:0"}, args[1:]...)
	return startFerryCmd(t, exec.Command(ferryBinary, full...))
}

// startFerryCmd starts cmd, a `ferry send|receive --json` the caller built
// (for example inside a network namespace), collects its events as they
// arrive, and kills it at cleanup.
func startFerryCmd(t testing.TB, cmd *exec.Cmd) *ferryProc {
	t.Helper()
	p := &ferryProc{cmd: cmd, notify: make(chan jsonEvent, 1024), done: make(chan struct{}), started: time.Now()}
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev jsonEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = jsonEvent{Event: "unparsable", Message: sc.Text()}
			}
			ev.At = time.Now()
			p.mu.Lock()
			p.events = append(p.events, ev)
			p.mu.Unlock()
			select {
			case p.notify <- ev:
			default:
			}
		}
		p.cmd.Wait()
		p.exit = p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// waitEvent waits for the first event satisfying ok.
func (p *ferryProc) waitEvent(t testing.TB, what string, ok func(jsonEvent) bool) jsonEvent {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev := <-p.notify:
			if ok(ev) {
				return ev
			}
		case <-p.done:
			// The last events may still be in the channel.
			for {
				select {
				case ev := <-p.notify:
					if ok(ev) {
						return ev
					}
				default:
					t.Fatalf("process exited (%d) before %s; stderr:\n%s", p.exit, what, p.stderr.String())
				}
			}
		case <-timeout:
			t.Fatalf("no %s within 2 minutes", what)
		}
	}
}

// wait waits for the process to exit and returns its status.
func (p *ferryProc) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("process did not exit")
	}
	return p.exit
}

func (p *ferryProc) find(kind string) (jsonEvent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e.Event == kind {
			return e, true
		}
	}
	return jsonEvent{}, false
}

// transferCLI runs send and receive to completion and returns both.
func transferCLI(t *testing.T, rendezvous, out string, paths ...string) (*ferryProc, *ferryProc) {
	t.Helper()
	send := startFerry(t, rendezvous, append([]string{"send"}, paths...)...)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	recv := startFerry(t, rendezvous, "receive", "--yes", "--out", out, c.Code)
	if code := recv.wait(t); code != 0 {
		t.Fatalf("receive exited %d; stderr:\n%s\nevents: %+v", code, recv.stderr.String(), recv.events)
	}
	if code := send.wait(t); code != 0 {
		t.Fatalf("send exited %d; stderr:\n%s\nevents: %+v\nreceiver events: %+v", code, send.stderr.String(), send.events, recv.events)
	}
	return send, recv
}

// sameTree compares two trees byte for byte, including empty folders.
func sameTree(t testing.TB, want, got string) {
	t.Helper()
	seen := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		q := filepath.Join(got, rel)
		st, err := os.Lstat(q)
		if err != nil {
			return fmt.Errorf("%s missing: %w", rel, err)
		}
		if d.IsDir() != st.IsDir() {
			return fmt.Errorf("%s: directory on one side only", rel)
		}
		if !d.IsDir() {
			seen++
			if err := sameFile(p, q); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			// Mode (less group and other write) and modification time
			// travel with the file.
			src, err := d.Info()
			if err != nil {
				return err
			}
			if w := src.Mode().Perm() &^ 0o022; st.Mode().Perm() != w {
				return fmt.Errorf("%s: mode %v, want %v", rel, st.Mode().Perm(), w)
			}
			if !st.ModTime().Equal(src.ModTime()) {
				return fmt.Errorf("%s: modified %v, want %v", rel, st.ModTime(), src.ModTime())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("compared no files")
	}
}

func sameFile(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return fmt.Errorf("contents differ near offset %d", off)
		}
		off += int64(na)
		if ea != nil || eb != nil {
			if (ea == nil) != (eb == nil) {
				return fmt.Errorf("lengths differ near offset %d", off)
			}
			return nil
		}
	}
}

func writeRandom(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		t.Fatal(err)
	}
}

// writeSparseLike writes n bytes that are mostly zeros with a few random
// islands, like a disk image.
func writeSparseLike(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	island := make([]byte, 64<<10)
	for off := int64(0); off < n; off += 64 << 20 {
		rand.Read(island)
		if _, err := f.WriteAt(island, off); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSendReceiveFolder(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	src := t.TempDir()
	tree := filepath.Join(src, "Fotos 日本")
	for _, d := range []string{"a/b/c", "empty folder", "Ünïcödé"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeRandom(t, filepath.Join(tree, "a/b/c/deep.bin"), 3<<20+17)
	writeRandom(t, filepath.Join(tree, "Ünïcödé/naïve café.txt"), 1000)
	os.WriteFile(filepath.Join(tree, "zero.txt"), nil, 0o644)
	os.WriteFile(filepath.Join(tree, "a/empty"), nil, 0o600)
	os.WriteFile(filepath.Join(tree, "text.txt"), bytes.Repeat([]byte("ferry carries files across. "), 50000), 0o644)
	single := filepath.Join(src, "single.bin")
	writeRandom(t, single, 123457)

	out := t.TempDir()
	send, recv := transferCLI(t, addr, out, tree, single)
	sameTree(t, tree, filepath.Join(out, "Fotos 日本"))
	if err := sameFile(single, filepath.Join(out, "single.bin")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*ferryProc{send, recv} {
		d, ok := p.find("done")
		if !ok || d.Files != 6 {
			t.Fatalf("done event %+v (found %v), want 6 files", d, ok)
		}
		c, ok := p.find("connected")
		if !ok || c.Path == "" || c.Peer == "" {
			t.Fatalf("connected event %+v", c)
		}
	}
	if _, err := os.Stat(filepath.Join(out, ".ferry-partial")); !os.IsNotExist(err) {
		t.Fatalf("partial state left behind after a complete transfer: %v", err)
	}

	// The same again: it is already there, so nothing is sent and no copy
	// is made.
	send2, recv2 := transferCLI(t, addr, out, single)
	if r, ok := recv2.find("resumed"); !ok || r.SkippedBytes != 123457 {
		t.Fatalf("resending a file already in place: resumed %+v (found %v), want all 123457 bytes", r, ok)
	}
	if d, _ := send2.find("done"); d.WireBytes >= 123457 {
		t.Fatalf("resending a file already in place sent %d wire bytes", d.WireBytes)
	}
	if _, err := os.Stat(filepath.Join(out, "single (1).bin")); !os.IsNotExist(err) {
		t.Fatalf("a copy of a file already in place was made: %v", err)
	}
	// Another file of the same name: nothing is overwritten, the new one
	// gets a new name.
	writeRandom(t, single, 1000)
	transferCLI(t, addr, out, single)
	if err := sameFile(single, filepath.Join(out, "single (1).bin")); err != nil {
		t.Fatal(err)
	}
}

func TestSendReceiveZeroByteFile(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	src := filepath.Join(t.TempDir(), "nothing")
	os.WriteFile(src, nil, 0o644)
	out := t.TempDir()
	transferCLI(t, addr, out, src)
	if st, err := os.Stat(filepath.Join(out, "nothing")); err != nil || st.Size() != 0 {
		t.Fatalf("zero-byte file: %v %v", st, err)
	}
}

// TestSendFollowLinks: a symbolic link inside a folder is left out (and
// said so) unless `ferry send --follow-links`, which sends what it points
// to as a regular file.
func TestSendFollowLinks(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	base := t.TempDir()
	album := filepath.Join(base, "album")
	os.MkdirAll(album, 0o755)
	os.WriteFile(filepath.Join(album, "a.txt"), []byte("inside"), 0o644)
	os.WriteFile(filepath.Join(base, "secret.txt"), []byte("outside the folder"), 0o644)
	if err := os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(album, "link.txt")); err != nil {
		t.Skipf("cannot make symbolic links here: %v", err)
	}

	out := t.TempDir()
	send, _ := transferCLI(t, addr, out, album)
	if _, err := os.Lstat(filepath.Join(out, "album", "link.txt")); err == nil {
		t.Error("a link inside the folder was sent without --follow-links")
	}
	if e, ok := send.find("skipped"); !ok || e.File != filepath.Join(album, "link.txt") || e.Reason != "link" {
		t.Errorf("the sender did not say the link was left out: %+v", send.events)
	}

	out = t.TempDir()
	transferCLI(t, addr, out, "--follow-links", album)
	got := filepath.Join(out, "album", "link.txt")
	st, err := os.Lstat(got)
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("with --follow-links, link.txt arrived as %v (%v)", st, err)
	}
	if b, _ := os.ReadFile(got); string(b) != "outside the folder" {
		t.Errorf("with --follow-links, link.txt holds %q", b)
	}
}

// TestSendReceiveLargeFiles moves 1 GiB of random data and a 1 GiB
// sparse-like file; the compressible one must cost far less on the wire.
func TestSendReceiveLargeFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB; skipped with -short")
	}
	addr, _, _ := startRendezvousProcess(t)
	src := t.TempDir()
	writeRandom(t, filepath.Join(src, "random.bin"), 1<<30)
	writeSparseLike(t, filepath.Join(src, "disk.img"), 1<<30)
	for _, name := range []string{"random.bin", "disk.img"} {
		out := t.TempDir()
		send, recv := transferCLI(t, addr, out, filepath.Join(src, name))
		if err := sameFile(filepath.Join(src, name), filepath.Join(out, name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, _ := send.find("done")
		t.Logf("%s: %d bytes, %d on the wire", name, d.Bytes, d.WireBytes)
		// With nothing lost, both sides count the same bytes.
		if rd, _ := recv.find("done"); rd.WireBytes != d.WireBytes {
			t.Errorf("%s: sender reports %d wire bytes, receiver %d", name, d.WireBytes, rd.WireBytes)
		}
		if name == "disk.img" && d.WireBytes > d.Bytes/10 {
			t.Fatalf("sparse-like file: %d wire bytes for %d bytes: compression did not work", d.WireBytes, d.Bytes)
		}
		os.RemoveAll(out)
	}
}

// TestResumeAfterKill kills one side with SIGKILL half way through, then
// runs both again with a new code: the second run resumes and moves well
// under 60% of the file.
func TestResumeAfterKill(t *testing.T) {
	for _, victim := range []string{"receiver", "sender"} {
		t.Run("kill "+victim, func(t *testing.T) {
			addr, _, _ := startRendezvousProcess(t)
			// Large enough that the second half outlasts the time from
			// the half-way event to the kill, even at 400 MB/s with this
			// test's reader behind by a few progress events (at 256 MiB
			// a busy CI machine saw the transfer finish first).
			const size = 1 << 30
			src := filepath.Join(t.TempDir(), "big.bin")
			writeRandom(t, src, size)
			out := t.TempDir()

			send := startFerry(t, addr, "send", src)
			c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
			recv := startFerry(t, addr, "receive", "--yes", "--out", out, c.Code)
			recv.waitEvent(t, "half way", func(e jsonEvent) bool { return e.Event == "progress" && e.Bytes >= size/2 })
			target := recv
			if victim == "sender" {
				target = send
			}
			target.cmd.Process.Signal(syscall.SIGKILL)
			target.wait(t)
			// The survivor would wait for the peer to come back until the
			// connection's idle timeout; the user gives up with Ctrl-C. It
			// stops with a clear error and keeps what it has.
			other := send
			if victim == "sender" {
				other = recv
			}
			other.cmd.Process.Signal(os.Interrupt)
			if code := other.wait(t); code != 1 {
				t.Fatalf("the surviving %s exited %d, want 1", other.cmd.Args[1], code)
			}
			if e, ok := other.find("error"); !ok || e.Kind == "" {
				t.Fatalf("survivor reported no error event: %+v", other.events)
			}
			if _, err := os.Stat(filepath.Join(out, "big.bin")); err == nil {
				t.Fatal("an unfinished file was moved into place")
			}

			send2, recv2 := transferCLI(t, addr, out, src)
			if err := sameFile(src, filepath.Join(out, "big.bin")); err != nil {
				t.Fatal(err)
			}
			r, ok := recv2.find("resumed")
			if !ok || r.SkippedBytes <= 0 {
				t.Fatalf("second run did not resume: %+v", recv2.events)
			}
			d, _ := send2.find("done")
			if d.WireBytes >= size*6/10 {
				t.Fatalf("second run sent %d wire bytes, want under 60%% of %d", d.WireBytes, size)
			}
			t.Logf("kill %s: resumed %d bytes, second run sent %d wire bytes (%.0f%% of the file)", victim, r.SkippedBytes, d.WireBytes, 100*float64(d.WireBytes)/size)
		})
	}
}

// TestResumeFolderAfterKill kills the receiver half way through a folder
// of many small files and a few large ones, then runs both again: the
// second run continues into the same folder (no "folder (1)"), does not
// send again the files already in place nor the verified chunks of the
// others, and leaves the folder identical to the source with no partial
// data behind.
func TestResumeFolderAfterKill(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	src := filepath.Join(t.TempDir(), "album")
	var size int64
	for i := range 300 {
		p := filepath.Join(src, fmt.Sprintf("part%d", i%7), fmt.Sprintf("small-%03d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeRandom(t, p, 64<<10+int64(i))
		size += 64<<10 + int64(i)
	}
	for i := range 3 {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("large-%d.bin", i)), 24<<20)
		size += 24 << 20
	}
	out := t.TempDir()

	send := startFerry(t, addr, "send", src)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	recv := startFerry(t, addr, "receive", "--yes", "--out", out, c.Code)
	recv.waitEvent(t, "half way", func(e jsonEvent) bool { return e.Event == "progress" && e.Bytes >= size/2 })
	recv.cmd.Process.Signal(syscall.SIGKILL)
	recv.wait(t)
	send.cmd.Process.Signal(os.Interrupt)
	send.wait(t)

	send2, recv2 := transferCLI(t, addr, out, src)
	sameTree(t, src, filepath.Join(out, "album"))
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("download folder holds %q, want only album", names)
	}
	r, ok := recv2.find("resumed")
	if !ok || r.SkippedBytes <= 0 {
		t.Fatalf("second run did not resume: %+v", recv2.events)
	}
	d, _ := send2.find("done")
	if d.WireBytes >= size*6/10 {
		t.Fatalf("second run sent %d wire bytes, want under 60%% of %d", d.WireBytes, size)
	}
	t.Logf("resumed %d of %d bytes, second run sent %d wire bytes (%.0f%%)", r.SkippedBytes, size, d.WireBytes, 100*float64(d.WireBytes)/float64(size))
}

func TestWrongCodeCLI(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("x"), 0o644)
	send := startFerry(t, addr, "send", src)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	parts := strings.SplitN(c.Code, "-", 3)
	wrong := parts[0] + "-" + parts[1] + "-" + map[bool]string{true: "adviser", false: "adroitness"}[parts[2] == "adroitness"]
	recv := startFerry(t, addr, "receive", "--yes", "--out", t.TempDir(), wrong)
	for _, p := range []*ferryProc{send, recv} {
		if code := p.wait(t); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if e, _ := p.find("error"); e.Kind != "code_mismatch" {
			t.Fatalf("error event %+v, want code_mismatch", e)
		}
	}
}

func TestReceiveUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"receive", "a", "b"},
		{"send"},
		{"receive", "--no-lan", "7-tiger-tomorrow"},
	} {
		cmd := exec.Command(ferryBinary, args...)
		cmd.Env = append(os.Environ(), "FERRY_RENDEZVOUS=")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage {
			t.Fatalf("%v: %v, want exit %d\n%s", args, err, exitUsage, out)
		}
	}
	// A code that does not parse: exit 1 with a bad_code event.
	out, err := exec.Command(ferryBinary, "receive", "--json", "--no-lan", "--rendezvous", "127.0.0.1:1", "7-notaword-tomorrow").Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure || !strings.Contains(string(out), `"kind":"bad_code"`) {
		t.Fatalf("bad code: %v\n%s", err, out)
	}
}

// TestDeclineWithoutYes: in --json mode nobody can answer, so without
// --yes the receiver declines and both sides say so.
func TestDeclineWithoutYes(t *testing.T) {
	addr, _, _ := startRendezvousProcess(t)
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("x"), 0o644)
	send := startFerry(t, addr, "send", src)
	c := send.waitEvent(t, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	out := t.TempDir()
	recv := startFerry(t, addr, "receive", "--out", out, c.Code)
	for _, p := range []*ferryProc{send, recv} {
		if code := p.wait(t); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if e, _ := p.find("error"); e.Kind != "declined" {
			t.Fatalf("error %+v, want declined", e)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("declined transfer wrote %d entries", len(entries))
	}
}
