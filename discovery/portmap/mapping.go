package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Mapping is one port mapping held on the gateway. Its methods are not
// safe for concurrent use; a Keeper owns its mapping alone.
type Mapping struct {
	// Protocol is the protocol that made the mapping.
	Protocol Protocol
	// External is the public address and port the router forwards to
	// the internal port.
	External netip.AddrPort
	// Lifetime is what the router granted; 0 means a permanent UPnP
	// mapping (an IGD that supports no other), which Delete still
	// removes.
	Lifetime time.Duration

	cfg       Config
	gw        Gateway
	proto     string
	internal  uint16
	requested time.Duration
	nonce     pcpNonce     // PCP: the mapping's identity for renewal and deletion
	upnp      *upnpGateway // UPnP: the IGD service that holds it
}

// Map asks the default gateway to forward external traffic for proto
// ("udp" or "tcp") to internalPort on this host for lifetime (rounded up
// to whole seconds; routers may grant less or more), trying PCP, NAT-PMP
// and UPnP in that order, each within its short timeout. Renew the
// mapping before Lifetime runs out (a Keeper does) and Delete it when
// done.
func Map(ctx context.Context, cfg Config, proto string, internalPort uint16, lifetime time.Duration) (*Mapping, error) {
	cfg = cfg.withDefaults()
	if _, ok := ianaProto(proto); !ok {
		return nil, fmt.Errorf("portmap: unknown protocol %q", proto)
	}
	if internalPort == 0 || lifetime <= 0 {
		return nil, fmt.Errorf("portmap: nothing to map (port %d, lifetime %v)", internalPort, lifetime)
	}
	gw, err := cfg.gateway()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, p := range cfg.order() {
		m := &Mapping{Protocol: p, cfg: cfg, gw: gw, proto: proto, internal: internalPort, requested: lifetime}
		if p == PCP {
			m.nonce = newPCPNonce()
		}
		err := m.request(ctx, lifetime)
		if err == nil {
			cfg.Logger.Info("port mapped", "protocol", p, "gateway", gw.IP, "internal", internalPort, "external", m.External, "lifetime", m.Lifetime)
			return m, nil
		}
		cfg.Logger.Debug("port mapping failed", "protocol", p, "gateway", gw.IP, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("portmap: no protocol mapped the port: %w", errors.Join(errs...))
}

// Renew asks the router to extend the mapping by the lifetime first
// asked for, and updates External and Lifetime from its answer (a router
// that restarted may hand out another port or address).
func (m *Mapping) Renew(ctx context.Context) error {
	return m.request(ctx, m.requested)
}

// Delete asks the router to remove the mapping, within deleteTimeout
// (or ctx, if it ends first). A mapping the router never hears about
// this for still expires at the end of its lifetime.
func (m *Mapping) Delete(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, deleteTimeout)
	defer cancel()
	var err error
	switch m.Protocol {
	case PCP, NATPMP:
		err = m.request(ctx, 0)
	case UPnP:
		err = upnpUnmap(ctx, m.upnp, m.proto, m.External.Port())
	}
	m.cfg.Logger.Info("port mapping deleted", "protocol", m.Protocol, "gateway", m.gw.IP, "external", m.External, "err", err)
	return err
}

// request creates, renews (lifetime > 0) or deletes (0, PCP and NAT-PMP
// only) the mapping with its protocol, suggesting the external port it
// holds already.
func (m *Mapping) request(ctx context.Context, lifetime time.Duration) error {
	switch m.Protocol {
	case PCP:
		ctx, cancel := context.WithTimeout(ctx, m.cfg.pmpTimeout)
		defer cancel()
		proto, _ := ianaProto(m.proto)
		r, err := pcpMap(ctx, m.cfg, m.gw, pcpMapRequest{
			nonce: m.nonce, proto: proto, internal: m.internal, ext: m.External, lifetime: lifetime,
		})
		if err != nil {
			return err
		}
		if lifetime > 0 {
			if !r.external.Addr().Is4() || r.external.Port() == 0 {
				return fmt.Errorf("%w: PCP assigned %v", errMalformed, r.external)
			}
			m.External, m.Lifetime = r.external, r.lifetime
		}
		return nil
	case NATPMP:
		ctx, cancel := context.WithTimeout(ctx, m.cfg.pmpTimeout)
		defer cancel()
		ext := m.External.Addr()
		if lifetime > 0 {
			// The mapping response carries no address: ask for it
			// each time, as a router's may change.
			a, err := pmpExternal(ctx, m.cfg, m.gw)
			if err != nil {
				return err
			}
			ext = a
		}
		suggest := m.External.Port()
		if lifetime == 0 {
			suggest = 0 // a deletion suggests no port (RFC 6886 Section 3.4)
		}
		r, err := pmpMap(ctx, m.cfg, m.gw, m.proto, m.internal, suggest, lifetime)
		if err != nil {
			return err
		}
		if lifetime > 0 {
			if r.external == 0 {
				return fmt.Errorf("%w: NAT-PMP mapped port 0", errMalformed)
			}
			m.External, m.Lifetime = netip.AddrPortFrom(ext, r.external), r.lifetime
		}
		return nil
	case UPnP:
		if m.upnp == nil {
			u, err := upnpDiscover(ctx, m.cfg, m.gw)
			if err != nil {
				return err
			}
			m.upnp = u
		}
		port, lease, err := upnpMap(ctx, m.cfg, m.gw, m.upnp, m.proto, m.internal, m.External.Port(), lifetime)
		if err != nil {
			return err
		}
		m.External, m.Lifetime = netip.AddrPortFrom(m.upnp.external, port), lease
		return nil
	}
	return fmt.Errorf("portmap: unknown protocol %q", m.Protocol)
}
