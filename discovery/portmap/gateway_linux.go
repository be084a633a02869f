//go:build linux

package portmap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// defaultRoute reads the IPv4 default route from the kernel's routing
// table. It reads /proc/thread-self/net/route, not /proc/net/route (the
// thread group leader's), so that a thread switched into another network
// namespace sees that namespace's routes.
func defaultRoute() (netip.Addr, string, error) {
	data, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		data, err = os.ReadFile("/proc/net/route")
		if err != nil {
			return netip.Addr{}, "", err
		}
	}
	return parseRoutes(data)
}

// Route flags from linux/route.h.
const (
	rtfUp      = 0x1
	rtfGateway = 0x2
)

// parseRoutes finds the default route with a gateway and the lowest
// metric in the text of /proc/net/route: a header line, then one route a
// line, with addresses as host-order (little-endian) hex.
func parseRoutes(data []byte) (netip.Addr, string, error) {
	var (
		best       netip.Addr
		bestIf     string
		bestMetric = -1
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		dst, ok1 := hexAddr(f[1])
		gw, ok2 := hexAddr(f[2])
		mask, ok3 := hexAddr(f[7])
		flags, err1 := strconv.ParseUint(f[3], 16, 32)
		metric, err2 := strconv.Atoi(f[6])
		if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil {
			continue
		}
		if !dst.IsUnspecified() || !mask.IsUnspecified() || flags&(rtfUp|rtfGateway) != rtfUp|rtfGateway || gw.IsUnspecified() {
			continue
		}
		if bestMetric < 0 || metric < bestMetric {
			best, bestIf, bestMetric = gw, f[0], metric
		}
	}
	if bestMetric < 0 {
		return netip.Addr{}, "", errors.New("no IPv4 default route with a gateway")
	}
	return best, bestIf, nil
}

// hexAddr decodes an IPv4 address written as 8 hex digits in host byte
// order (the kernel prints the raw 32-bit value).
func hexAddr(s string) (netip.Addr, bool) {
	if len(s) != 8 {
		return netip.Addr{}, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, false
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.NativeEndian.Uint32(b))
	return netip.AddrFrom4(a), true
}
