package discovery

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"ferry/discovery/code"
	"ferry/internal/netlab"
)

// lanReport is what each child process prints about its pairing.
type lanReport struct {
	KeyHash, Own, Peer string
}

// TestLANPairingBetweenProcesses pairs two processes with no rendezvous
// server: the sender serves an embedded mailbox and announces it by
// multicast inside a namespace the test creates; the receiver finds it by
// the code alone. Both must end with the same key and each other's
// fingerprint.
func TestLANPairingBetweenProcesses(t *testing.T) {
	ns := netlab.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sender := ns.Command(ctx, os.Args[0], "-test.run", "^TestLANPairingChild$")
	sender.Env = append(os.Environ(), "FERRY_LAN_CHILD=send")
	out, err := sender.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sender.Stderr = os.Stderr
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sender.Process.Kill(); sender.Wait() }()
	lines := bufio.NewScanner(out)
	var shareCode string
	for shareCode == "" && lines.Scan() {
		shareCode, _ = strings.CutPrefix(lines.Text(), "CODE ")
	}
	if shareCode == "" {
		t.Fatal("sender printed no code")
	}
	receiver := ns.Command(ctx, os.Args[0], "-test.run", "^TestLANPairingChild$")
	receiver.Env = append(os.Environ(), "FERRY_LAN_CHILD=receive", "FERRY_CODE="+shareCode)
	receiver.Stderr = os.Stderr
	rout, err := receiver.Output()
	if err != nil {
		t.Fatalf("receiver: %v\n%s", err, rout)
	}
	recvRep := parseReport(t, string(rout))
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	sendRep := parseReport(t, rest.String())
	if sendRep.KeyHash != recvRep.KeyHash {
		t.Fatalf("keys differ: sender %q, receiver %q", sendRep.KeyHash, recvRep.KeyHash)
	}
	if sendRep.Peer != recvRep.Own || recvRep.Peer != sendRep.Own {
		t.Fatalf("fingerprints not exchanged: sender %+v, receiver %+v", sendRep, recvRep)
	}
}

func parseReport(t *testing.T, out string) lanReport {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if r, ok := strings.CutPrefix(line, "REPORT "); ok {
			var rep lanReport
			if err := json.Unmarshal([]byte(r), &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
	}
	t.Fatalf("no report in child output:\n%s", out)
	return lanReport{}
}

// TestLANPairingChild is one side of TestLANPairingBetweenProcesses; it
// does nothing unless started by it.
func TestLANPairingChild(t *testing.T) {
	role := os.Getenv("FERRY_LAN_CHILD")
	if role != "send" && role != "receive" {
		t.Skip("child process of TestLANPairingBetweenProcesses")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	offer := testOffer(t, 4242)
	cfg := Config{Logger: quietLogger()}
	var res *Result
	if role == "send" {
		inv, err := Host(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer inv.Close()
		if !inv.LAN() {
			t.Fatal("not in LAN mode without a rendezvous server")
		}
		fmt.Println("CODE", inv.Code())
		if res, err = inv.Pair(ctx, offer); err != nil {
			t.Fatal(err)
		}
	} else {
		c, err := code.Parse(os.Getenv("FERRY_CODE"))
		if err != nil {
			t.Fatal(err)
		}
		if res, err = Join(ctx, cfg, c, offer); err != nil {
			t.Fatal(err)
		}
	}
	kh := sha256.Sum256(res.TransportKey)
	rep, _ := json.Marshal(lanReport{KeyHash: hex.EncodeToString(kh[:]), Own: offer.Fingerprint.String(), Peer: res.PeerFingerprint.String()})
	fmt.Println("REPORT", string(rep))
}
