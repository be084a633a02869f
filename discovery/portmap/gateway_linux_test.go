package portmap

import (
	"net/netip"
	"testing"
)

func TestParseRoutes(t *testing.T) {
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
