package transport

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ferry/internal/netlab"
)

// netWatchGuard bounds every wait of the netwatch tests, which should end
// in milliseconds: a failure guard, never a synchronisation.
const netWatchGuard = 10 * time.Second

// netWatchNS is a network namespace made for one test, with two uplinks
// (veth pairs) to a peer namespace, both up and addressed, and the IPv4
// default route on uplink 0: the shape of a laptop on wired and Wi-Fi at
// once. Nothing in it is linked to the test's own namespace.
type netWatchNS struct {
	ns   *netlab.Namespace
	devs [2]string // the uplinks' devices in ns
	gws  [2]string // the peer's IPv4 address on each uplink, the gateway
	gw6s [2]string // the same for IPv6, when the namespace has IPv6
}

// newNetWatchNS builds a netWatchNS and waits until the kernel has
// finished reacting to the setup, so that no notification of it arrives
// later. With ipv6 false IPv6 is disabled in the namespace: the kernel
// then has no address configuration of its own to finish (link-local
// addresses, duplicate address detection), which it would do
// asynchronously. With ipv6 true each uplink gets a fixed IPv6 address and
// uplink 0 the IPv6 default route, and the kernel makes no addresses of
// its own; tests that wait for notifications use ipv6 false. It skips
// unless this is Linux, as root, with the ip command.
func newNetWatchNS(t *testing.T, ipv6 bool) *netWatchNS {
	t.Helper()
	ns := netlab.NewNamespace(t)
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		ipv6 = false // this kernel has no IPv6
	}
	if ipv6 {
		ns.SetSysctls(t,
			"net.ipv6.conf.default.addr_gen_mode", "1", // no link-local addresses
			"net.ipv6.conf.all.accept_dad", "0",
			"net.ipv6.conf.default.accept_dad", "0",
		)
	} else {
		ns.SetSysctls(t,
			"net.ipv6.conf.all.disable_ipv6", "1",
			"net.ipv6.conf.default.disable_ipv6", "1",
		)
	}
	peer := netlab.NewNamespace(t)
	w := &netWatchNS{ns: ns}
	for i := range w.devs {
		w.devs[i], _ = netlab.Connect(t, ns, peer, fmt.Sprintf("198.18.%d.2/24", i+1), fmt.Sprintf("198.18.%d.1/24", i+1))
		w.gws[i] = fmt.Sprintf("198.18.%d.1", i+1)
		if ipv6 {
			w.gw6s[i] = fmt.Sprintf("2001:db8:%d::1", i+1)
			ns.IP(t, "-6", "addr", "add", fmt.Sprintf("2001:db8:%d::2/64", i+1), "dev", w.devs[i], "nodad")
		}
	}
	ns.IP(t, "route", "add", "default", "via", w.gws[0], "dev", w.devs[0])
	if ipv6 {
		ns.IP(t, "-6", "route", "add", "default", "via", w.gw6s[0], "dev", w.devs[0])
	}
	w.settle(t)
	return w
}

// settle waits until both uplinks are running. A veth's carrier comes up
// when both ends are up, and the kernel applies that (operstate, then a
// link notification) from a work queue up to a second later; it waits for
// those notifications on a watcher of its own rather than sleeping.
func (w *netWatchNS) settle(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	defer close(done)
	ch := w.watch(t, done)
	timeout := time.After(netWatchGuard)
	for !w.running(t) {
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatal("the settling watcher stopped")
			}
		case <-timeout:
			t.Fatalf("uplinks %v not running after %v", w.devs, netWatchGuard)
		}
	}
}

// running reports whether both uplinks are up with carrier (IFF_RUNNING).
func (w *netWatchNS) running(t *testing.T) bool {
	t.Helper()
	up := true
	err := w.ns.Do(func() error {
		for _, dev := range w.devs {
			ifc, err := net.InterfaceByName(dev)
			if err != nil {
				return err
			}
			up = up && ifc.Flags&net.FlagRunning != 0
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// watch starts watchNetwork inside the namespace, so its socket hears
// that namespace's changes; it stops when done is closed.
func (w *netWatchNS) watch(t *testing.T, done <-chan struct{}) <-chan struct{} {
	t.Helper()
	var ch <-chan struct{}
	err := w.ns.Do(func() (err error) {
		ch, err = watchNetwork(done)
		return err
	})
	if err != nil {
		t.Fatalf("watchNetwork in %s: %v", w.ns.Name, err)
	}
	return ch
}

// fingerprint computes networkFingerprint inside the namespace.
func (w *netWatchNS) fingerprint(t *testing.T) []string {
	t.Helper()
	return w.inside(t, networkFingerprint)
}

// addrs computes interfaceAddrs (the poller's old view) inside the
// namespace.
func (w *netWatchNS) addrs(t *testing.T) []string {
	t.Helper()
	return w.inside(t, interfaceAddrs)
}

// inside runs f on a thread in the namespace and returns its result.
func (w *netWatchNS) inside(t *testing.T, f func() []string) []string {
	t.Helper()
	var out []string
	if err := w.ns.Do(func() error { out = f(); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// fingerprintRoute renders the fingerprint entry of a default route via gw on dev.
func fingerprintRoute(gw, dev string, metric int) string {
	return fmt.Sprintf("default via %s dev %s metric %d", gw, dev, metric)
}

// noNetWatchPending fails t if ch already holds a notification: what
// follows must be caused by the test's own change.
func noNetWatchPending(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("a notification was pending before the change: the namespace had not settled")
	default:
	}
}

// waitNetWatch waits for a notification on ch, for at most netWatchGuard.
func waitNetWatch(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the watcher stopped instead of notifying", what)
		}
	case <-time.After(netWatchGuard):
		t.Fatalf("%s: no notification within %v", what, netWatchGuard)
	}
}

// TestNetworkFingerprintInNamespace computes the fingerprint inside a
// namespace and finds exactly its uplinks' addresses and its IPv4 and IPv6
// default routes, none of the host's: the routes are read for the calling
// thread's namespace. Switching the default route to the other uplink,
// both staying up, changes the fingerprint but not the address list the
// poller used before.
func TestNetworkFingerprintInNamespace(t *testing.T) {
	w := newNetWatchNS(t, true)
	a, b := w.devs[0], w.devs[1]
	want := []string{
		a + " 198.18.1.2/24",
		b + " 198.18.2.2/24",
		fingerprintRoute(w.gws[0], a, 0),
	}
	if w.gw6s[0] != "" {
		want = append(want,
			a+" 2001:db8:1::2/64",
			b+" 2001:db8:2::2/64",
			fingerprintRoute(w.gw6s[0], a, 1024),
		)
	}
	slices.Sort(want)
	before := w.fingerprint(t)
	if !slices.Equal(before, want) {
		t.Fatalf("fingerprint in the namespace:\n got %q\nwant %q", before, want)
	}
	addrsBefore := w.addrs(t)
	w.ns.IP(t, "route", "replace", "default", "via", w.gws[1], "dev", b)
	after := w.fingerprint(t)
	if slices.Equal(before, after) {
		t.Fatalf("fingerprint unchanged by the route switch: %q", after)
	}
	if !slices.Contains(after, fingerprintRoute(w.gws[1], b, 0)) || slices.Contains(after, fingerprintRoute(w.gws[0], a, 0)) {
		t.Fatalf("fingerprint after the switch lacks the new route or keeps the old: %q", after)
	}
	if addrsAfter := w.addrs(t); !slices.Equal(addrsBefore, addrsAfter) {
		t.Fatalf("interface addresses changed by a route switch: %q, then %q", addrsBefore, addrsAfter)
	}
}

// watchQuiet starts a watcher in w's namespace for the rest of the test,
// takes the fingerprint and checks that nothing is pending yet.
func (w *netWatchNS) watchQuiet(t *testing.T) (<-chan struct{}, []string) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	ch := w.watch(t, done)
	before := w.fingerprint(t)
	noNetWatchPending(t, ch)
	return ch, before
}

// TestNetWatchRouteSwitch moves the default route to the other uplink
// (both stay up, no address changes) and expects a notification and a
// new fingerprint; it logs how long after the change the notification
// arrived.
func TestNetWatchRouteSwitch(t *testing.T) {
	w := newNetWatchNS(t, false)
	ch, before := w.watchQuiet(t)
	start := time.Now()
	w.ns.IP(t, "route", "replace", "default", "via", w.gws[1], "dev", w.devs[1])
	ran := time.Now()
	waitNetWatch(t, ch, "switching the default route")
	got := time.Now()
	t.Logf("route switch noticed %v after the ip command returned (%v after it started)", got.Sub(ran), got.Sub(start))
	after := w.fingerprint(t)
	if slices.Equal(before, after) {
		t.Fatalf("fingerprint unchanged by the route switch: %q", after)
	}
	if !slices.Contains(after, fingerprintRoute(w.gws[1], w.devs[1], 0)) {
		t.Fatalf("fingerprint after the switch lacks the new default route: %q", after)
	}
}

// TestNetWatchLinkDown takes the uplink that does not carry the default
// route down and expects a notification, and the fingerprint to lose that
// uplink's address.
func TestNetWatchLinkDown(t *testing.T) {
	w := newNetWatchNS(t, false)
	ch, before := w.watchQuiet(t)
	start := time.Now()
	w.ns.IP(t, "link", "set", w.devs[1], "down")
	waitNetWatch(t, ch, "taking an uplink down")
	t.Logf("link down noticed %v after the ip command started", time.Since(start))
	after := w.fingerprint(t)
	gone := w.devs[1] + " 198.18.2.2/24"
	if !slices.Contains(before, gone) || slices.Contains(after, gone) {
		t.Fatalf("fingerprint should lose %q when its link goes down:\nbefore %q\n after %q", gone, before, after)
	}
}

// TestNetWatchDoneClosesChannel closes done on a live watcher and expects
// the channel to be closed, the netlink socket to be closed (no
// descriptor of this process refers to it any more) and the watcher's
// goroutines to be gone.
func TestNetWatchDoneClosesChannel(t *testing.T) {
	ns := netlab.NewNamespace(t)
	var f *os.File
	if err := ns.Do(func() (err error) { f, err = openRouteWatch(); return err }); err != nil {
		t.Fatal(err)
	}
	ino := socketInode(t, f)
	done := make(chan struct{})
	ch := startRouteWatch(f, done)
	ns.IP(t, "addr", "add", "198.18.0.99/32", "dev", "lo") // prove it live
	waitNetWatch(t, ch, "adding an address")
	if !fdRefersTo(t, ino) {
		t.Fatalf("no descriptor refers to the watcher's socket %d while it runs", ino)
	}
	close(done)
	timeout := time.After(netWatchGuard)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-timeout:
			t.Fatalf("channel still open %v after done was closed", netWatchGuard)
		}
	}
	if fdRefersTo(t, ino) {
		t.Fatalf("the watcher's socket %d is still open after its channel closed", ino)
	}
	noNetWatchGoroutines(t)

	// A watcher whose done is already closed stops at once.
	closed := make(chan struct{})
	close(closed)
	var ch2 <-chan struct{}
	if err := ns.Do(func() (err error) { ch2, err = watchNetwork(closed); return err }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch2: // closed (or one stray notification, then closed)
		for range ch2 {
		}
	case <-time.After(netWatchGuard):
		t.Fatal("watcher with done already closed did not stop")
	}
	noNetWatchGoroutines(t)
}

// socketInode returns the inode of the socket f, which names it in
// /proc/self/fd as "socket:[inode]".
func socketInode(t *testing.T, f *os.File) uint64 {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// fdRefersTo reports whether any open descriptor of this process is the
// socket with inode ino.
func fdRefersTo(t *testing.T, ino uint64) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("socket:[%d]", ino)
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && l == want {
			return true
		}
	}
	return false
}

// noNetWatchGoroutines waits (at most netWatchGuard, yielding meanwhile)
// until no goroutine runs the watcher's code, and fails t otherwise.
func noNetWatchGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(netWatchGuard)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "transport.startRouteWatch") || strings.Contains(g, "transport.readRouteWatch") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watcher goroutines left:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
	}
}

// nlAttr encodes one rtnetlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, data []byte) []byte {
	b := make([]byte, unix.SizeofRtAttr, unix.SizeofRtAttr+len(data)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(unix.SizeofRtAttr+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nlMsg encodes one netlink message of type typ: a header of the given
// fixed size (zeroed) followed by attrs.
func nlMsg(typ uint16, header int, attrs ...[]byte) []byte {
	body := make([]byte, header)
	for _, a := range attrs {
		body = append(body, a...)
	}
	b := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(b[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	return append(b, body...)
}

// TestNetWatchFilter checks which notification datagrams count as a
// change: all but those holding only wireless-extension events.
func TestNetWatchFilter(t *testing.T) {
	wireless := nlMsg(unix.RTM_NEWLINK, unix.SizeofIfInfomsg,
		nlAttr(unix.IFLA_IFNAME, []byte("wlan0\x00")),
		nlAttr(unix.IFLA_WIRELESS, make([]byte, 8)))
	link := nlMsg(unix.RTM_NEWLINK, unix.SizeofIfInfomsg,
		nlAttr(unix.IFLA_IFNAME, []byte("eth0\x00")),
		nlAttr(unix.IFLA_OPERSTATE, []byte{6}))
	addr := nlMsg(unix.RTM_NEWADDR, unix.SizeofIfAddrmsg, nlAttr(unix.IFA_ADDRESS, []byte{10, 0, 0, 2}))
	rt := nlMsg(unix.RTM_DELROUTE, unix.SizeofRtMsg, nlAttr(unix.RTA_GATEWAY, []byte{10, 0, 0, 1}))
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"wireless event", wireless, false},
		{"two wireless events", append(slices.Clone(wireless), wireless...), false},
		{"link change", link, true},
		{"address change", addr, true},
		{"route change", rt, true},
		{"wireless event then route change", append(slices.Clone(wireless), rt...), true},
		{"truncated", wireless[:len(wireless)-6], true},
		{"garbage", []byte{1, 2, 3}, true},
		{"empty", nil, true},
	} {
		if got := routeChange(c.b); got != c.want {
			t.Errorf("%s: routeChange = %v, want %v", c.name, got, c.want)
		}
	}
}

// procRoute4 renders a /proc/net/route line the way the kernel does:
// addresses are the big-endian value printed as a native-endian number.
func procRoute4(iface, dst, gw string, flags, metric int, mask string) string {
	hex := func(s string) string {
		a := netip.MustParseAddr(s).As4()
		return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(a[:]))
	}
	return fmt.Sprintf("%s\t%s\t%s\t%04X\t0\t0\t%d\t%s\t0\t0\t0                                                                               \n",
		iface, hex(dst), hex(gw), flags, metric, hex(mask))
}

// TestFingerprintParseProcRoutes parses fixture /proc/net/route and
// /proc/net/ipv6_route text: only up, non-reject default routes are kept,
// with their gateway (the unspecified address when there is none),
// device and metric.
func TestFingerprintParseProcRoutes(t *testing.T) {
	v4 := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       \n" +
		procRoute4("eth0", "0.0.0.0", "192.168.1.1", 0x3, 100, "0.0.0.0") +
		procRoute4("eth0", "192.168.1.0", "0.0.0.0", 0x1, 100, "255.255.255.0") +
		procRoute4("wlan0", "0.0.0.0", "10.0.0.1", 0x3, 600, "0.0.0.0") +
		procRoute4("wg0", "0.0.0.0", "0.0.0.0", 0x1, 0, "0.0.0.0") +
		procRoute4("eth1", "0.0.0.0", "10.9.9.9", 0x2, 0, "0.0.0.0") + // not up
		procRoute4("*", "0.0.0.0", "0.0.0.0", 0x201, 0, "0.0.0.0") + // unreachable
		procRoute4("eth2", "0.0.0.0", "10.8.8.8", 0x203, 0, "0.0.0.0") + // prohibit
		procRoute4("eth0", "0.0.0.0", "192.168.1.1", 0x3, 100, "128.0.0.0") + // 0.0.0.0/1, not default
		"eth0\tnot\thex\n" +
		"\n"
	got4 := parseIPv4DefaultRoutes([]byte(v4))
	want4 := []string{
		"default via 192.168.1.1 dev eth0 metric 100",
		"default via 10.0.0.1 dev wlan0 metric 600",
		"default via 0.0.0.0 dev wg0 metric 0",
	}
	if !slices.Equal(got4, want4) {
		t.Errorf("IPv4 default routes:\n got %q\nwant %q", got4, want4)
	}

	const zero = "00000000000000000000000000000000"
	v6 := "fd000000000000000000000000000000 40 " + zero + " 00 " + zero + " 00000100 00000001 00000000 00000001     eth0\n" +
		zero + " 00 " + zero + " 00 fe800000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n" +
		zero + " 00 " + zero + " 00 " + zero + " 00000000 00000001 00000000 00000001      wg0\n" +
		zero + " 00 " + zero + " 00 fd000000000000000000000000000009 00000400 00000001 00000000 00000002     eth1\n" + // not up
		zero + " 00 " + zero + " 00 " + zero + " ffffffff 00000001 00000000 00200200       lo\n" + // the kernel's null entry
		zero + " 00 " + zero + " 00 " + zero + " 00000400 00000001 00000000 00000201     eth2\n" + // reject
		"ff000000000000000000000000000000 08 " + zero + " 00 " + zero + " 00000100 00000003 00000000 00000001     eth0\n" +
		"00000000000000000000000000000001 80 " + zero + " 00 " + zero + " 00000000 00000004 00000000 80200001       lo\n" +
		"0000 00 " + zero + " 00 " + zero + " 00000400 00000001 00000000 00000003     eth0\n" + // short address
		"garbage\n"
	got6 := parseIPv6DefaultRoutes([]byte(v6))
	want6 := []string{
		"default via fe80::1 dev eth0 metric 1024",
		"default via :: dev wg0 metric 0",
	}
	if !slices.Equal(got6, want6) {
		t.Errorf("IPv6 default routes:\n got %q\nwant %q", got6, want6)
	}
}
