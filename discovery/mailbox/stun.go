package mailbox

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/pion/stun/v2"
)

// stunSoftware is the SOFTWARE attribute of STUN responses.
const stunSoftware = "ferry"

// ServeSTUN answers STUN Binding requests on pc (pion/stun/v2:
// XOR-MAPPED-ADDRESS, and also MAPPED-ADDRESS, plus SOFTWARE "ferry"),
// ignoring everything else, until ctx is done or Shutdown. It closes pc when
// it returns, and returns nil then (ErrServerClosed if called after
// Shutdown).
func (s *Server) ServeSTUN(ctx context.Context, pc net.PacketConn) error {
	defer pc.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.packets[pc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.packets, pc)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	buf := make([]byte, 1500)
	req := new(stun.Message)
	var backoff time.Duration
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Transient errors (on Windows, ICMP port unreachable surfaces
			// as a read error on UDP sockets): back off and go on.
			backoff = min(max(2*backoff, time.Millisecond), time.Second)
			s.log.Debug("stun read failed", "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		resp := stunResponse(req, buf[:n], from)
		if resp == nil {
			continue
		}
		if _, err := pc.WriteTo(resp, from); err != nil {
			s.log.Debug("stun write failed", "err", err)
		}
	}
}

// stunResponse returns the Binding success response to data, a packet from
// from, or nil when data is not a well-formed STUN Binding request. req is
// scratch space.
func stunResponse(req *stun.Message, data []byte, from net.Addr) []byte {
	if !stun.IsMessage(data) {
		return nil
	}
	req.Reset()
	req.Raw = append(req.Raw[:0], data...)
	if err := req.Decode(); err != nil || req.Type != stun.BindingRequest {
		return nil
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return nil
	}
	ip := ua.IP
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	resp := new(stun.Message)
	err := resp.Build(
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: ip, Port: ua.Port},
		&stun.MappedAddress{IP: ip, Port: ua.Port},
		stun.NewSoftware(stunSoftware),
		stun.Fingerprint,
	)
	if err != nil {
		return nil
	}
	return resp.Raw
}
