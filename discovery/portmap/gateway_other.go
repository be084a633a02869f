//go:build !linux

package portmap

import (
	"errors"
	"net/netip"
)

// defaultRoute is implemented on Linux only; elsewhere there is no
// gateway, and callers see None.
func defaultRoute() (netip.Addr, string, error) {
	return netip.Addr{}, "", errors.New("default gateway lookup not implemented on this OS")
}
