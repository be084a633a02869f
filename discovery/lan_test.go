package discovery

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"ferry/internal/netlab"
)

func TestBeaconRoundTrip(t *testing.T) {
	b := Beacon{Nameplate: "4711", Port: 40123}
	p, err := MarshalBeacon(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBeacon(p)
	if err != nil || got != b {
		t.Fatalf("ParseBeacon = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("FRYB"), append([]byte("FRYC"), p[4:]...), p[:len(p)-1], append(bytes.Clone(p), 0)} {
		if _, err := ParseBeacon(bad); err == nil {
			t.Fatalf("accepted %x", bad)
		}
	}
	if _, err := MarshalBeacon(Beacon{Nameplate: strings.Repeat("1", 17), Port: 1}); err == nil {
		t.Fatal("17-digit nameplate accepted")
	}
}

func FuzzParseBeacon(f *testing.F) {
	p, _ := MarshalBeacon(Beacon{Nameplate: "7", Port: 7788})
	f.Add(p)
	f.Add([]byte("FRYB\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseBeacon(b)
		if err != nil {
			return
		}
		again, err := MarshalBeacon(got)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %+v gave %x, want %x (%v)", got, again, b, err)
		}
	})
}

// TestLANBeaconBetweenProcesses runs an announcing process and a listening
// process inside a fresh network namespace: the listener finds the
// announcer's nameplate and port by multicast, and nothing is multicast on
// the machine's own interfaces.
func TestLANBeaconBetweenProcesses(t *testing.T) {
	ns := netlab.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	announcer := ns.Command(ctx, os.Args[0], "-test.run", "^TestLANBeaconChild$")
	announcer.Env = append(os.Environ(), "FERRY_LAN_CHILD=announce")
	if err := announcer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { announcer.Process.Kill(); announcer.Wait() }()
	finder := ns.Command(ctx, os.Args[0], "-test.run", "^TestLANBeaconChild$", "-test.v")
	finder.Env = append(os.Environ(), "FERRY_LAN_CHILD=find")
	out, err := finder.CombinedOutput()
	if err != nil {
		t.Fatalf("finder: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "found 127.0.0.1:40123") {
		t.Fatalf("finder did not report the announcer:\n%s", out)
	}
}

// TestLANBeaconChild is the child half of TestLANBeaconBetweenProcesses; it
// does nothing unless started by it.
func TestLANBeaconChild(t *testing.T) {
	role := os.Getenv("FERRY_LAN_CHILD")
	if role == "" {
		t.Skip("child process of TestLANBeaconBetweenProcesses")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch role {
	case "announce":
		if err := Announce(ctx, DefaultLANGroup, Beacon{Nameplate: "42", Port: 40123}); err != nil {
			t.Fatal(err)
		}
	case "find":
		addr, err := FindSender(ctx, DefaultLANGroup, "42")
		if err != nil {
			t.Fatal(err)
		}
		if addr != netip.MustParseAddrPort("127.0.0.1:40123") {
			t.Fatalf("found %v", addr)
		}
		fmt.Println("found", addr)
	}
}
