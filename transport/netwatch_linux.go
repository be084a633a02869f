package transport

// Linux network-change notification: an rtnetlink socket that joins the
// kernel's link, address and route multicast groups, so a move between
// networks is noticed when the kernel makes it rather than at the next
// poll, and a fingerprint of the network attachment (addresses and default
// routes) for the poller to compare.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errNetWatchUnsupported: this system gives no network-change
// notifications (on Linux: the kernel or a sandbox such as gVisor or a
// seccomp profile refuses rtnetlink multicast), so callers rely on polling.
var errNetWatchUnsupported = errors.New("transport: network change notifications unsupported")

// netWatchGroups are the rtnetlink multicast groups watchNetwork joins:
// links going up or down, addresses coming and going, and route changes,
// for IPv4 and IPv6. Addresses alone miss a move between two uplinks that
// are both up (only the default route changes); routes alone miss a DHCP
// renewal that hands out a new address on the same subnet.
const netWatchGroups = unix.RTMGRP_LINK |
	unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
	unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE

// netWatchBufSize holds a notification datagram: the kernel builds most in
// NLMSG_GOODSIZE buffers (a page, at most 8 KiB), and only a link
// notification listing many SR-IOV virtual functions runs longer. A longer
// datagram is cut short, which costs nothing but the filter: a datagram
// that does not parse counts as a change.
const netWatchBufSize = 32 << 10

// watchNetwork subscribes to the kernel's link, address and route change
// notifications (AF_NETLINK, NETLINK_ROUTE, groups netWatchGroups) and
// sends on the returned channel whenever one arrives. The channel has
// capacity 1 and is never blocked on: changes that arrive while a signal
// is pending coalesce into it, so a receiver compares networkFingerprint
// once per receive. Wireless-extension events (scan results and the like,
// sent as link notifications) are not changes and are dropped; a lost
// notification (the socket's receive buffer overflowed) counts as one.
//
// The socket belongs to the network namespace of the calling thread (a
// test calls it inside netlab's Namespace.Do); the reading goroutine may
// run anywhere. It exits, having closed the socket, and the channel is
// closed, when done is closed. Should the socket fail first (no such
// failure is expected), the channel is closed early; the caller then
// falls back to polling, as it does when watchNetwork returns an error
// (wrapping errNetWatchUnsupported when rtnetlink multicast is refused).
func watchNetwork(done <-chan struct{}) (<-chan struct{}, error) {
	f, err := openRouteWatch()
	if err != nil {
		return nil, err
	}
	return startRouteWatch(f, done), nil
}

// openRouteWatch opens a non-blocking rtnetlink socket joined to
// netWatchGroups and hands it to the runtime poller as an *os.File, so a
// Close from another goroutine wakes a pending Read (closing a raw fd
// would not wake a blocked recvfrom, and could close a reused number).
func openRouteWatch() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, netWatchError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: netWatchGroups}); err != nil {
		_ = unix.Close(fd)
		return nil, netWatchError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	// A descriptor the poller did not take would stay non-blocking with
	// nothing to wait on, and the read loop would spin: refuse it. Setting
	// a deadline (here: none) fails exactly for such a file.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("transport: netlink socket not pollable: %w", err)
	}
	return f, nil
}

// netWatchError wraps a failure to open the rtnetlink socket, marking the
// errors that mean the system refuses rtnetlink multicast (rather than a
// passing shortage such as EMFILE) as errNetWatchUnsupported.
func netWatchError(op string, err error) error {
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EPROTONOSUPPORT),
		errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES),
		errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: netlink %s: %w", errNetWatchUnsupported, op, err)
	}
	return fmt.Errorf("transport: netlink %s: %w", op, err)
}

// startRouteWatch starts the goroutines that own f: a reader that signals
// the returned channel for every notification that routeChange accepts, and
// a closer that closes f when done is closed, which wakes the reader. The
// reader closes f (again, harmlessly) and then the channel as it exits; the
// closer exits with done or with the reader, whichever is first.
func startRouteWatch(f *os.File, done <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{}, 1)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-done:
			_ = f.Close()
		case <-stopped:
		}
	}()
	go func() {
		defer close(ch)
		defer f.Close()
		defer close(stopped)
		readRouteWatch(f, ch)
	}()
	return ch
}

// readRouteWatch reads notifications from f until it is closed or fails,
// signalling ch (without blocking) for each datagram that holds a change.
func readRouteWatch(f *os.File, ch chan<- struct{}) {
	buf := make([]byte, netWatchBufSize)
	for {
		n, err := f.Read(buf)
		switch {
		case err == nil:
			if !routeChange(buf[:n]) {
				continue
			}
		case errors.Is(err, unix.ENOBUFS):
			// The receive buffer overflowed and notifications were
			// dropped: something changed, so say so.
		default:
			return // closed by done, or failed
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// routeChange reports whether a datagram of rtnetlink notifications holds a
// network change: any message but a wireless-extension event (a link
// notification carrying IFLA_WIRELESS, sent for scans and association
// chatter, never for a link going up or down). A datagram that does not
// parse counts as a change.
func routeChange(b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) == 0 {
		return true
	}
	for i := range msgs {
		if !wirelessEvent(&msgs[i]) {
			return true
		}
	}
	return false
}

// wirelessEvent reports whether m is an RTM_NEWLINK carrying IFLA_WIRELESS.
func wirelessEvent(m *syscall.NetlinkMessage) bool {
	if m.Header.Type != unix.RTM_NEWLINK {
		return false
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return false
	}
	for _, a := range attrs {
		if a.Attr.Type&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER) == unix.IFLA_WIRELESS {
			return true
		}
	}
	return false
}

// networkFingerprint describes the machine's network attachment as a
// sorted list of strings: every up, non-loopback interface's addresses
// ("ifname addr/prefix", from interfaceAddrs) and the default routes
// ("default via GW dev IF metric M", see defaultRoutes). Two fingerprints
// differ when the attachment moved, including a move that only switches
// the default route between two uplinks that are both up. It reads the
// namespace of the calling thread.
func networkFingerprint() []string {
	out := append(interfaceAddrs(), defaultRoutes()...)
	slices.Sort(out)
	return slices.Compact(out)
}

// defaultRoutes lists the IPv4 default routes of the main table and the
// IPv6 default routes of every table, as parseIPv4DefaultRoutes and
// parseIPv6DefaultRoutes render them; a table it cannot read (no IPv6 in
// this kernel) contributes nothing.
func defaultRoutes() []string {
	var out []string
	if b, err := readProcNet("route"); err == nil {
		out = append(out, parseIPv4DefaultRoutes(b)...)
	}
	if b, err := readProcNet("ipv6_route"); err == nil {
		out = append(out, parseIPv6DefaultRoutes(b)...)
	}
	return out
}

// readProcNet reads a file of the calling thread's network namespace from
// /proc/thread-self/net. /proc/net is /proc/self/net, which shows the
// namespace of the process's main thread: the same in a ferry process, but
// the wrong one for a thread that entered another namespace (a test's
// Namespace.Do). Kernels before 3.17 have no thread-self; they get
// /proc/net.
func readProcNet(name string) ([]byte, error) {
	b, err := os.ReadFile("/proc/thread-self/net/" + name)
	if errors.Is(err, os.ErrNotExist) {
		b, err = os.ReadFile("/proc/net/" + name)
	}
	return b, err
}

// parseIPv4DefaultRoutes picks the default routes (destination and mask
// 0, up, not a reject route) out of /proc/net/route text: tab-separated
// columns Iface, Destination, Gateway, Flags, RefCnt, Use, Metric, Mask,
// ..., one route per line after a header. Addresses are the 32-bit
// big-endian value printed as a native-endian hex number, so the bytes are
// recovered by writing it back in native order. Lines that do not parse
// (the header among them) are skipped.
func parseIPv4DefaultRoutes(b []byte) []string {
	var out []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] == "*" {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		gw, err2 := strconv.ParseUint(f[2], 16, 32)
		flags, err3 := strconv.ParseUint(f[3], 16, 32)
		metric, err4 := strconv.ParseUint(f[6], 10, 32)
		mask, err5 := strconv.ParseUint(f[7], 16, 32)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			continue
		}
		if dst != 0 || mask != 0 || flags&unix.RTF_UP == 0 || flags&unix.RTF_REJECT != 0 {
			continue
		}
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(gw))
		out = append(out, defaultRoute(netip.AddrFrom4(a), f[0], metric))
	}
	return out
}

// parseIPv6DefaultRoutes picks the default routes (::/0, up, not a reject
// route such as the kernel's unreachable entries on lo) out of
// /proc/net/ipv6_route text: space-separated columns destination (32 hex
// digits, network order), its prefix length (hex), source, its prefix
// length, next hop, metric (hex), refcount, use, flags (hex) and device.
// Lines that do not parse are skipped.
func parseIPv6DefaultRoutes(b []byte) []string {
	var out []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		dst, ok1 := parseHexIPv6(f[0])
		gw, ok2 := parseHexIPv6(f[4])
		plen, err1 := strconv.ParseUint(f[1], 16, 8)
		metric, err2 := strconv.ParseUint(f[5], 16, 32)
		flags, err3 := strconv.ParseUint(f[8], 16, 32)
		if !ok1 || !ok2 || errors.Join(err1, err2, err3) != nil {
			continue
		}
		if !dst.IsUnspecified() || plen != 0 || flags&unix.RTF_UP == 0 || flags&unix.RTF_REJECT != 0 || f[9] == "lo" {
			continue
		}
		out = append(out, defaultRoute(gw, f[9], metric))
	}
	return out
}

// parseHexIPv6 parses an IPv6 address written as 32 hex digits.
func parseHexIPv6(s string) (netip.Addr, bool) {
	var a [16]byte
	if len(s) != 32 {
		return netip.Addr{}, false
	}
	for i := range a {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		a[i] = byte(v)
	}
	return netip.AddrFrom16(a), true
}

// defaultRoute renders a default route for the fingerprint as "default
// via GW dev IF metric M". A route with no gateway (a point-to-point link
// or tunnel) shows the unspecified address of its family as GW, as route
// -n and netstat -rn do, so the IPv4 and IPv6 default routes of one tunnel
// stay distinct. The metric is part of it because, of several default
// routes, the lowest metric wins: a change of metric can move the traffic.
func defaultRoute(gw netip.Addr, dev string, metric uint64) string {
	return "default via " + gw.String() + " dev " + dev + " metric " + strconv.FormatUint(metric, 10)
}
