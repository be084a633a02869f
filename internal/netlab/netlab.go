// Package netlab builds isolated network namespaces for tests that need a
// real kernel network: multicast between processes, NATs made with
// nftables. Every namespace is created by the test, never linked to the
// host's own namespace, and deleted when the test ends. It needs Linux, root
// and the ip command; tests skip with a message otherwise.
//
// NewLab builds a NAT lab: an "internet" namespace on 198.18.0.0/16 that
// routes between router namespaces and holds the servers' addresses
// (ServerIP), and hosts added with AddHost, each behind one NAT router per
// uplink on a 10.x LAN of its own. A router's NATKind (full cone,
// address-restricted, port-restricted, symmetric) is made with nftables
// masquerade, learned maps and a router-style firewall; it can drop UDP or
// TCP, and Rebind gives its host a new public port, while SwitchUplink
// moves a host to another uplink. Programs run inside with
// Namespace.Command, sockets are opened inside with Namespace.Do. The lab
// also needs nft (Debian package nftables), conntrack (package
// conntrack) for Rebind, and miniupnpd (package miniupnpd-nftables) for
// Router.StartPortMapper.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// netnsDir is where `ip netns add` keeps its namespace handles.
const netnsDir = "/var/run/netns"

// Namespace is one network namespace made by a test.
type Namespace struct {
	Name string
}

// RequireRoot skips t unless this is Linux (network namespaces exist only
// there), the process is root and the ip command exists.
func RequireRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (runs in CI, where tests run as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (Debian package iproute2)")
	}
}

// NewNamespace creates a namespace with loopback up and multicast routed
// over it, so processes inside can multicast to each other without any
// packet reaching a real interface. It is deleted at cleanup.
func NewNamespace(t testing.TB) *Namespace {
	t.Helper()
	RequireRoot(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := &Namespace{Name: "ferry-test-" + hex.EncodeToString(b[:])}
	run(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns.Name).Run() })
	ns.IP(t, "link", "set", "lo", "up")
	ns.IP(t, "link", "set", "lo", "multicast", "on")
	ns.IP(t, "route", "add", "224.0.0.0/4", "dev", "lo", "src", "127.0.0.1")
	return ns
}

// IP runs `ip -n NAME args...` and fails t on error.
func (ns *Namespace) IP(t testing.TB, args ...string) {
	t.Helper()
	run(t, "ip", append([]string{"-n", ns.Name}, args...)...)
}

// Command returns a command that runs inside the namespace.
func (ns *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
