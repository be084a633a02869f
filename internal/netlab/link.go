package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"testing"
)

// Connect joins namespaces a and b with a veth pair and returns the
// device's name on each side. The pair is created directly inside the two
// namespaces (one end in a, its peer moved into b by the same netlink
// request), so it never exists in the host's own namespace, not even
// briefly, and nothing links either namespace to the host. addrA and addrB
// are CIDR addresses such as "198.18.0.1/24" (tests use 198.18.0.0/15, the
// benchmarking range) given to the ends in a and b; both ends are up when
// Connect returns. The pair goes away with either namespace.
func Connect(t testing.TB, a, b *Namespace, addrA, addrB string) (devA, devB string) {
	t.Helper()
	RequireRoot(t)
	// Interface names are at most 15 bytes: "vf" + 8 hex digits + side.
	var r [4]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	devA, devB = "vf"+id+"a", "vf"+id+"b"
	a.IP(t, "link", "add", devA, "type", "veth", "peer", "name", devB, "netns", b.Name)
	a.IP(t, "addr", "add", addrA, "dev", devA)
	b.IP(t, "addr", "add", addrB, "dev", devB)
	a.IP(t, "link", "set", devA, "up")
	b.IP(t, "link", "set", devB, "up")
	return devA, devB
}

// LimitRate shapes what leaves dev (a device in ns) to rate, a tc rate such
// as "100mbit" or "1gbit", with a token-bucket qdisc (256 KiB bucket, at
// most 20 ms of queueing). Shape both ends of a link to limit both
// directions. It skips t if the tc command (Debian package iproute2) is
// missing.
func (ns *Namespace) LimitRate(t testing.TB, dev, rate string) {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("needs the tc command (Debian package iproute2) to limit a link's rate")
	}
	run(t, "tc", "-n", ns.Name, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "20ms")
}
