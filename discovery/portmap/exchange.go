package portmap

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// exchange sends req from gw.Local to the gateway's PCP/NAT-PMP port,
// retransmitting with doubling intervals from pmpRetransmit, and hands
// every datagram from the gateway to parse until parse accepts one (nil)
// or refuses the request (a *ResultError), the socket reports the port
// closed (an ICMP port unreachable: no server, answered at once), or ctx
// ends. Datagrams parse calls malformed are ignored: they answer some
// other request, or are not for us.
func exchange(ctx context.Context, cfg Config, gw Gateway, req []byte, parse func([]byte) error) error {
	conn, err := cfg.dialUDP(gw.Local, netip.AddrPortFrom(gw.IP, pmpPort))
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, 1100) // PCP's maximum message size
	interval := pmpRetransmit
	for {
		if _, err := conn.Write(req); err != nil {
			return err
		}
		resend := time.Now().Add(interval)
		interval *= 2
		_ = conn.SetReadDeadline(resend)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // resend
				}
				return err
			}
			err = parse(buf[:n])
			if !errors.Is(err, errMalformed) {
				return err
			}
		}
	}
}
