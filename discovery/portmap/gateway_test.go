package portmap

import (
	"errors"
	"net/netip"
	"runtime"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parses Linux's /proc/net/route")
	}
	// The kernel prints the raw 32-bit values; these are little-endian.
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
		"eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t0000000A\t00000000\t0001\t0\t0\t100\t000000FF\t0\t0\t0\n" +
		"tun0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n"
	gw, ifname, err := parseRoutes([]byte(table))
	if err != nil {
		t.Fatal(err)
	}
	if gw != netip.MustParseAddr("10.0.0.1") || ifname != "eth0" {
		t.Errorf("default route via %v on %s, want 10.0.0.1 on eth0 (the lowest metric with a gateway)", gw, ifname)
	}
	if _, _, err := parseRoutes([]byte("Iface\tDestination\n")); err == nil {
		t.Error("a table without a default route gave one")
	}
}

func TestCheckGateway(t *testing.T) {
	lan := []netip.Prefix{netip.MustParsePrefix("192.168.1.20/24")}
	for _, c := range []struct {
		name string
		gw   Gateway
		ok   bool
	}{
		{"home LAN", Gateway{IP: netip.MustParseAddr("192.168.1.1"), Local: netip.MustParseAddr("192.168.1.20")}, true},
		{"gateway off-link", Gateway{IP: netip.MustParseAddr("192.168.2.1"), Local: netip.MustParseAddr("192.168.1.20")}, false},
		{"local address on another interface", Gateway{IP: netip.MustParseAddr("192.168.1.1"), Local: netip.MustParseAddr("192.168.1.21")}, false},
		{"public", Gateway{IP: netip.MustParseAddr("198.51.100.1"), Local: netip.MustParseAddr("198.51.100.20")}, false},
		{"carrier-grade NAT", Gateway{IP: netip.MustParseAddr("100.64.0.1"), Local: netip.MustParseAddr("100.64.0.20")}, false},
	} {
		prefixes := lan
		if !c.gw.IP.IsPrivate() {
			prefixes = []netip.Prefix{netip.PrefixFrom(c.gw.Local, 24)}
		}
		err := checkGateway(c.gw, prefixes)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrNoGateway) {
			t.Errorf("%s: checkGateway = %v, want ok %v", c.name, err, c.ok)
		}
	}
}
