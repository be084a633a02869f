package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ferry/internal/netlab"
)

// TestSendReceiveLANNoServer runs `ferry send` and `ferry receive` with no
// rendezvous server at all, inside a network namespace the test creates:
// the sender's embedded mailbox is found by its multicast beacon, and the
// file arrives intact. Nothing is multicast on the machine's own
// interfaces.
func TestSendReceiveLANNoServer(t *testing.T) {
	ns := netlab.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := filepath.Join(t.TempDir(), "hello.bin")
	writeRandom(t, src, 5<<20+3)
	out := t.TempDir()

	send := ns.Command(ctx, ferryBinary, "send", "--json", "--listen", "127.0.0.1:0", src)
	send.Env = append(os.Environ(), "FERRY_RENDEZVOUS=")
	stdout, err := send.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := send.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { send.Process.Kill(); send.Wait() }()
	sc := bufio.NewScanner(stdout)
	code := ""
	for code == "" && sc.Scan() {
		var ev jsonEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "code" {
			code = ev.Code
		}
	}
	if code == "" {
		t.Fatal("sender printed no code")
	}
	recv := ns.Command(ctx, ferryBinary, "receive", "--json", "--yes", "--listen", "127.0.0.1:0", "--out", out)
	recv.Env = append(os.Environ(), "FERRY_RENDEZVOUS=", "FERRY_CODE="+code)
	if b, err := recv.CombinedOutput(); err != nil {
		t.Fatalf("receive: %v\n%s", err, b)
	}
	for sc.Scan() {
	}
	if err := send.Wait(); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := sameFile(src, filepath.Join(out, "hello.bin")); err != nil {
		t.Fatal(err)
	}
}
