package discovery

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
)

// LAN pairing without a server: the sender runs an in-process mailbox and
// multicasts a small beacon naming its nameplate and the mailbox's TCP port;
// a receiver who types the code listens for the beacon with that nameplate
// and talks to the mailbox at the beacon's source address. The beacon is
// public information only (the nameplate is public anyway); the words, and
// so the keys, never leave the two machines, and the PAKE defeats anyone who
// answers in the sender's place.
//
// Beacon layout: "FRYB" | version (1) | nameplate length (1) | nameplate |
// mailbox TCP port (2, big-endian).

// DefaultLANGroup is the multicast group and port of ferry's beacons: in the
// IPv4 organisation-local scope (239.255.0.0/16), which routers do not
// forward beyond the site.
var DefaultLANGroup = netip.MustParseAddrPort("239.255.70.82:7788")

const (
	beaconMagic   = "FRYB"
	beaconVersion = 1
	// beaconInterval is how often the sender repeats its beacon.
	beaconInterval = 500 * time.Millisecond
	maxNameplate   = 16
)

// ErrNoLANSender is returned when no beacon for the nameplate was heard.
var ErrNoLANSender = errors.New("discovery: no sender on the local network announced this code")

// Beacon is a sender's announcement.
type Beacon struct {
	Nameplate string
	Port      uint16
}

// MarshalBeacon encodes a beacon.
func MarshalBeacon(b Beacon) ([]byte, error) {
	if len(b.Nameplate) == 0 || len(b.Nameplate) > maxNameplate {
		return nil, fmt.Errorf("discovery: nameplate of %d bytes cannot be announced", len(b.Nameplate))
	}
	out := append([]byte(beaconMagic), beaconVersion, byte(len(b.Nameplate)))
	out = append(out, b.Nameplate...)
	return binary.BigEndian.AppendUint16(out, b.Port), nil
}

// ParseBeacon decodes a beacon, rejecting anything malformed.
func ParseBeacon(p []byte) (Beacon, error) {
	if len(p) < 6 || !bytes.Equal(p[:4], []byte(beaconMagic)) {
		return Beacon{}, errors.New("discovery: not a ferry beacon")
	}
	if p[4] != beaconVersion {
		return Beacon{}, fmt.Errorf("discovery: beacon version %d not understood", p[4])
	}
	n := int(p[5])
	if n == 0 || n > maxNameplate || len(p) != 6+n+2 {
		return Beacon{}, errors.New("discovery: malformed beacon")
	}
	b := Beacon{Nameplate: string(p[6 : 6+n]), Port: binary.BigEndian.Uint16(p[6+n:])}
	if b.Port == 0 {
		return Beacon{}, errors.New("discovery: beacon without a port")
	}
	for _, c := range []byte(b.Nameplate) {
		if c < '0' || c > '9' {
			return Beacon{}, errors.New("discovery: beacon nameplate is not a number")
		}
	}
	return b, nil
}

// multicastInterfaces lists the up interfaces that can multicast (including
// loopback when its multicast flag is on, for pairing on one machine).
func multicastInterfaces() []net.Interface {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []net.Interface
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagMulticast != 0 {
			out = append(out, ifc)
		}
	}
	return out
}

// Announce multicasts b on every multicast-capable interface every half
// second until ctx ends.
func Announce(ctx context.Context, group netip.AddrPort, b Beacon) error {
	msg, err := MarshalBeacon(b)
	if err != nil {
		return err
	}
	conn, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return fmt.Errorf("discovery: open beacon socket: %w", err)
	}
	defer conn.Close()
	pc := ipv4.NewPacketConn(conn)
	_ = pc.SetMulticastLoopback(true)
	_ = pc.SetMulticastTTL(1)
	dst := net.UDPAddrFromAddrPort(group)
	t := time.NewTicker(beaconInterval)
	defer t.Stop()
	for {
		sent := 0
		for _, ifc := range multicastInterfaces() {
			if err := pc.SetMulticastInterface(&ifc); err != nil {
				continue
			}
			if _, err := pc.WriteTo(msg, nil, dst); err == nil {
				sent++
			}
		}
		if sent == 0 {
			err = errors.New("discovery: no interface could send the LAN beacon")
		}
		select {
		case <-ctx.Done():
			if sent == 0 {
				return err
			}
			return nil
		case <-t.C:
		}
	}
}

// FindSender listens for a beacon with the given nameplate and returns the
// announced mailbox address (the beacon's source IP and its port).
func FindSender(ctx context.Context, group netip.AddrPort, nameplate string) (netip.AddrPort, error) {
	lc := net.ListenConfig{Control: reuseAddrPort}
	conn, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", group.Port()))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("discovery: listen for LAN beacons: %w", err)
	}
	defer conn.Close()
	pc := ipv4.NewPacketConn(conn)
	joined := 0
	for _, ifc := range multicastInterfaces() {
		if err := pc.JoinGroup(&ifc, net.UDPAddrFromAddrPort(group)); err == nil {
			joined++
		}
	}
	if joined == 0 {
		return netip.AddrPort{}, errors.New("discovery: no interface could join the LAN beacon group")
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 64)
	for {
		n, _, src, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrNoLANSender, ctx.Err())
			}
			return netip.AddrPort{}, fmt.Errorf("discovery: read LAN beacons: %w", err)
		}
		b, err := ParseBeacon(buf[:n])
		if err != nil || b.Nameplate != nameplate {
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ua.IP)
		if !ok || ip.IsUnspecified() {
			continue
		}
		return netip.AddrPortFrom(ip.Unmap(), b.Port), nil
	}
}
