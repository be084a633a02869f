package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// NATKind is the behaviour of a lab router's NAT, in RFC 3489 terms.
type NATKind int

const (
	// FullCone maps each internal address and port to one public port
	// and forwards to it whatever arrives there, from anyone.
	FullCone NATKind = iota + 1
	// AddressRestricted maps like FullCone but admits only packets from
	// addresses the host has sent to from that port (any remote port).
	AddressRestricted
	// PortRestricted maps like FullCone but admits only packets from the
	// exact addresses and ports the host has sent to: Linux's plain
	// masquerade, and the most common home router.
	PortRestricted
	// Symmetric picks a new random public port for every destination
	// and filters like PortRestricted.
	Symmetric
)

// String returns the kind's name, such as "port-restricted".
func (k NATKind) String() string {
	switch k {
	case FullCone:
		return "full-cone"
	case AddressRestricted:
		return "address-restricted"
	case PortRestricted:
		return "port-restricted"
	case Symmetric:
		return "symmetric"
	}
	return "NATKind(" + strconv.Itoa(int(k)) + ")"
}

// NATKinds lists every kind, loosest first.
var NATKinds = []NATKind{FullCone, AddressRestricted, PortRestricted, Symmetric}

// NATSpec describes one router between a host and the lab's internet.
type NATSpec struct {
	// Kind is the NAT behaviour; it must be set.
	Kind NATKind
	// DropUDP makes the router drop every UDP packet it would forward,
	// in both directions, like a network that allows only TCP.
	DropUDP bool
	// DropTCP makes the router drop every TCP packet it would forward.
	DropTCP bool
}

// LabConfig configures NewLab. The zero value is an unshaped lossless
// lab.
type LabConfig struct {
	// Rate, if set, limits each direction of every link between a router
	// (or a host without NAT) and the internet namespace, with a tc
	// token-bucket rate such as "20mbit" (see LimitRate).
	Rate string
	// LossPercent, if above zero, drops that percentage of the packets
	// in each direction of the same links, at random (nftables numgen in
	// a netdev ingress chain at both ends).
	LossPercent int
}

// Lab is a small internet made of network namespaces: an Internet
// namespace that routes between the routers' WAN links and holds the
// servers' addresses, and hosts, each behind one or more NAT routers of
// its own. Public addresses are in 198.18.0.0/16 (router R's WAN link is
// 198.18.R.0/24, the internet side .1 and the router .2); host N's LAN
// behind its uplink i is 10.N.i.0/24 (router .1, host .2). Nothing is
// linked to the test's own namespace, and every namespace is deleted when
// the test that called NewLab ends, whether it passed or not. A Lab is not
// safe for concurrent use; set it up from the test's goroutine.
type Lab struct {
	// Internet is the namespace that routes between the routers. Servers
	// that the hosts should reach (a rendezvous server, a STUN reflector)
	// listen in it on ServerIP or AltServerIP.
	Internet *Namespace

	cfg     LabConfig
	mu      sync.Mutex // guards names
	names   []string   // every namespace made, deleted at cleanup
	hosts   []*Host
	routers int // router links made so far (WAN subnets used)
}

// Host is an end host in a Lab, behind one router per uplink.
type Host struct {
	// Name is the name given to AddHost, for messages.
	Name string
	// NS is the host's namespace: run the program under test here.
	NS *Namespace

	uplinks []uplink
	active  int
}

type uplink struct {
	router *Router // nil for a direct link to the internet
	dev    string  // the host's device, "up<i>"
	ip     netip.Addr
	gw     netip.Addr
}

// Router is one NAT router in a Lab, between a host's uplink and the
// internet. Its WAN device is "wan" and its LAN device "lan".
type Router struct {
	// NS is the router's namespace.
	NS *Namespace

	spec    NATSpec
	wan     netip.Addr
	rebinds int
}

// serverIP and altServerIP are the internet namespace's own addresses, on
// its loopback device.
var (
	serverIP    = netip.MustParseAddr("198.18.0.10")
	altServerIP = netip.MustParseAddr("198.18.0.11")
)

// maxRouters is how many WAN links fit: 198.18.1.0/24 to 198.18.255.0/24.
const maxRouters = 255

// NewLab creates the internet namespace of a lab, with forwarding on and
// the server addresses ServerIP and AltServerIP, and deletes it (with
// every namespace AddHost adds later) when t ends. It skips t unless this
// is Linux with root, ip and nft (Debian packages iproute2 and nftables).
// It also deletes namespaces that earlier lab runs left behind when their
// process was killed before its cleanup could run.
func NewLab(t testing.TB, cfg LabConfig) *Lab {
	t.Helper()
	RequireRoot(t)
	requireNFT(t)
	if cfg.LossPercent < 0 || cfg.LossPercent > 100 {
		t.Fatalf("LossPercent %d out of 0-100", cfg.LossPercent)
	}
	sweepStaleLabs()
	l := &Lab{cfg: cfg}
	t.Cleanup(l.deleteAll)
	l.Internet = l.newNamespace(t, true)
	l.Internet.ipBatch(t,
		"addr add "+serverIP.String()+"/32 dev lo",
		"addr add "+altServerIP.String()+"/32 dev lo",
	)
	return l
}

// ServerIP is the internet namespace's main address, 198.18.0.10, for a
// rendezvous or STUN server that every host can reach.
func (l *Lab) ServerIP() netip.Addr { return serverIP }

// AltServerIP is a second address of the internet namespace,
// 198.18.0.11, for tests that need a packet from an address a host has
// not contacted (NAT filtering) or a second server.
func (l *Lab) AltServerIP() netip.Addr { return altServerIP }

// Hosts returns the hosts added so far, in order.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// AddHost adds a host with one uplink per NATSpec, each through a router
// namespace of its own to the internet; with no NATSpec the host has a
// single uplink straight onto the internet, with a public address. Uplink
// 0 carries the default route; the others are up, addressed and unused
// until SwitchUplink. Each router has the kind's NAT and a router-style
// firewall that lets nothing new in from the internet (see natRuleset).
func (l *Lab) AddHost(t testing.TB, name string, nats ...NATSpec) *Host {
	t.Helper()
	n := len(l.hosts) + 1
	if n > 254 {
		t.Fatalf("lab: too many hosts")
	}
	if len(nats) > 255 {
		t.Fatalf("lab: too many uplinks")
	}
	for _, s := range nats {
		if s.Kind < FullCone || s.Kind > Symmetric {
			t.Fatalf("lab: host %s: NATSpec has no valid Kind (%v)", name, s.Kind)
		}
	}
	h := &Host{Name: name, NS: l.newNamespace(t, false)}
	l.hosts = append(l.hosts, h)
	if len(nats) == 0 {
		r := l.wanLink(t)
		dev := "up0"
		l.linkToInternet(t, h.NS, dev, r, false)
		h.uplinks = append(h.uplinks, uplink{dev: dev, ip: wanAddr(r, 2), gw: wanAddr(r, 1)})
	}
	for i, s := range nats {
		r := l.wanLink(t)
		rt := &Router{NS: l.newNamespace(t, true), spec: s, wan: wanAddr(r, 2)}
		l.linkToInternet(t, rt.NS, "wan", r, true)
		dev := "up" + strconv.Itoa(i)
		lanNet := fmt.Sprintf("10.%d.%d.", n, i)
		rt.NS.IP(t, "link", "add", "lan", "type", "veth", "peer", "name", dev, "netns", h.NS.Name)
		rt.NS.ipBatch(t,
			"addr add "+lanNet+"1/24 dev lan",
			"link set lan up",
		)
		h.NS.ipBatch(t,
			"addr add "+lanNet+"2/24 dev "+dev,
			"link set "+dev+" up",
		)
		rt.NS.NFT(t, natRuleset(s, ""))
		h.uplinks = append(h.uplinks, uplink{
			router: rt, dev: dev,
			ip: netip.MustParseAddr(lanNet + "2"),
			gw: netip.MustParseAddr(lanNet + "1"),
		})
	}
	u := h.uplinks[0]
	h.NS.IP(t, "route", "add", "default", "via", u.gw.String(), "dev", u.dev)
	return h
}

// IP returns the host's own address on uplink i: private (10.N.i.2)
// behind a NAT, public without one.
func (h *Host) IP(i int) netip.Addr { return h.uplinks[i].ip }

// Router returns the router of uplink i, nil for a host without NAT.
func (h *Host) Router(i int) *Router { return h.uplinks[i].router }

// Uplinks is the number of the host's uplinks.
func (h *Host) Uplinks() int { return len(h.uplinks) }

// ActiveUplink is the uplink that carries the default route.
func (h *Host) ActiveUplink() int { return h.active }

// SwitchUplink moves the host's default route to uplink i, as when a
// laptop moves from one network to another; the old uplink stays up.
// Unconnected sockets bound to the wildcard address send from the new
// uplink's address from the next packet on; a connected UDP socket keeps
// its old source address and its replies stop returning, so programs must
// rebind such sockets. The peer sees the host's new public
// address; NAT state for the old one stays in the old router until it
// times out.
func (h *Host) SwitchUplink(t testing.TB, i int) {
	t.Helper()
	u := h.uplinks[i]
	h.NS.IP(t, "route", "replace", "default", "via", u.gw.String(), "dev", u.dev)
	h.active = i
}

// SetUplinkUp takes uplink i's device down (up false) or back up, as when
// a network disappears. Taking the active uplink down removes the default
// route with it; bringing it back does not restore it (call SwitchUplink).
func (h *Host) SetUplinkUp(t testing.TB, i int, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	h.NS.IP(t, "link", "set", h.uplinks[i].dev, state)
}

// PublicIP is the router's WAN address, the host's public address when
// it uses this router.
func (r *Router) PublicIP() netip.Addr { return r.wan }

// Spec returns the router's NATSpec.
func (r *Router) Spec() NATSpec { return r.spec }

// Rebind gives the host behind r a new public port, as a home router does
// when it restarts or its mappings expire: it moves the masquerade to a
// port range not used before (a different one on each call, all within
// 1024-32023, below the ports the kernel picks for sockets bound to port
// 0, so that a host's own port never falls in one) and flushes the
// router's conntrack table and learned cone mappings. The host's next
// packet to anyone leaves from a new public port. It skips t if the
// conntrack command (Debian package conntrack) is missing.
func (r *Router) Rebind(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("needs the conntrack command (Debian package conntrack) to rebind a NAT")
	}
	r.rebinds++
	base := 1024 + ((r.rebinds-1)%31)*1000
	r.NS.NFT(t, natRuleset(r.spec, fmt.Sprintf("%d-%d", base, base+999)))
	out, err := exec.Command("ip", "netns", "exec", r.NS.Name, "conntrack", "-F").CombinedOutput()
	if err != nil {
		t.Fatalf("conntrack -F in %s: %v\n%s", r.NS.Name, err, out)
	}
}

// wanLink reserves the next public /24 for a link to the internet.
func (l *Lab) wanLink(t testing.TB) int {
	t.Helper()
	if l.routers == maxRouters {
		t.Fatalf("lab: more than %d links to the internet", maxRouters)
	}
	l.routers++
	return l.routers
}

func wanAddr(r, host int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(r), byte(host)})
}

// linkToInternet joins ns to the internet namespace with a veth pair on
// 198.18.r.0/24: dev in ns (.2, with a default route via .1 if route),
// "r<r>" in the internet namespace (.1), shaped and made lossy as the
// LabConfig says.
func (l *Lab) linkToInternet(t testing.TB, ns *Namespace, dev string, r int, route bool) {
	t.Helper()
	inetDev := "r" + strconv.Itoa(r)
	ns.IP(t, "link", "add", dev, "type", "veth", "peer", "name", inetDev, "netns", l.Internet.Name)
	cmds := []string{
		"addr add " + wanAddr(r, 2).String() + "/24 dev " + dev,
		"link set " + dev + " up",
	}
	if route {
		cmds = append(cmds, "route add default via "+wanAddr(r, 1).String())
	}
	ns.ipBatch(t, cmds...)
	l.Internet.ipBatch(t,
		"addr add "+wanAddr(r, 1).String()+"/24 dev "+inetDev,
		"link set "+inetDev+" up",
	)
	if l.cfg.Rate != "" {
		ns.LimitRate(t, dev, l.cfg.Rate)
		l.Internet.LimitRate(t, inetDev, l.cfg.Rate)
	}
	if l.cfg.LossPercent > 0 {
		ns.NFT(t, lossRuleset(l.cfg.LossPercent, dev))
		l.Internet.NFT(t, lossRuleset(l.cfg.LossPercent, inetDev))
	}
}

// labPrefix starts the name of every lab namespace; the creating process's
// id follows, so that namespaces of a killed run can be recognised.
const labPrefix = "ferry-lab-"

// newNamespace creates a lab namespace with loopback up and reverse-path
// filtering off (so a host may receive on an uplink that is not its
// default route), forwarding on for routers, and records it for deletion.
func (l *Lab) newNamespace(t testing.TB, forward bool) *Namespace {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := &Namespace{Name: labPrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])}
	run(t, "ip", "netns", "add", ns.Name)
	l.mu.Lock()
	l.names = append(l.names, ns.Name)
	l.mu.Unlock()
	ns.IP(t, "link", "set", "lo", "up")
	kv := []string{"net.ipv4.conf.all.rp_filter", "0", "net.ipv4.conf.default.rp_filter", "0"}
	if forward {
		kv = append(kv, "net.ipv4.ip_forward", "1")
	}
	ns.SetSysctls(t, kv...)
	return ns
}

// deleteAll deletes every namespace of the lab with one ip command.
func (l *Lab) deleteAll() {
	l.mu.Lock()
	names := l.names
	l.names = nil
	l.mu.Unlock()
	deleteNamespaces(names)
}

func deleteNamespaces(names []string) {
	if len(names) == 0 {
		return
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString("netns del " + n + "\n")
	}
	cmd := exec.Command("ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	_ = cmd.Run()
}

// sweepStaleLabs deletes lab namespaces whose creating process no longer
// exists: what a run killed before its cleanup (by -timeout, a signal)
// left behind.
func sweepStaleLabs() {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	var stale []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), labPrefix)
		if !ok {
			continue
		}
		pid, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			stale = append(stale, e.Name())
		}
	}
	deleteNamespaces(stale)
}

// ipBatch runs several ip commands in the namespace with one process
// (`ip -n NAME -batch -`) and fails t on error.
func (ns *Namespace) ipBatch(t testing.TB, cmds ...string) {
	t.Helper()
	cmd := exec.Command("ip", "-n", ns.Name, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s -batch: %v\n%s\ncommands:\n%s", ns.Name, err, out, strings.Join(cmds, "\n"))
	}
}
