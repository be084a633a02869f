package portmap

import (
	"errors"
	"net/netip"
	"testing"
)

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
