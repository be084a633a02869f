package portmap

import (
	"context"
	"net/netip"
	"slices"
	"sync"
)

// Result is what Probe learned about the gateway.
type Result struct {
	// Protocol is the most preferred protocol that answered (PCP, then
	// NAT-PMP, then UPnP), or None.
	Protocol Protocol
	// Answered lists every protocol that answered, most preferred first.
	Answered []Protocol
	// External is the router's external address as NAT-PMP (else UPnP)
	// reports it; invalid when neither answered. PCP has no request for
	// it short of a mapping. Behind a second NAT this is itself a private
	// address, and a mapping on this router alone does not make the host
	// reachable.
	External netip.Addr
	// Gateway is the router that was asked; invalid when there is none.
	Gateway netip.Addr
}

// Has reports whether p answered.
func (r Result) Has(p Protocol) bool { return slices.Contains(r.Answered, p) }

// Probe asks the default gateway, with every protocol at once, whether it
// maps ports, and returns within the longest protocol timeout (about a
// second, for UPnP; a few hundred milliseconds when only PCP and NAT-PMP
// are asked). The error is non-nil only when there is no gateway to ask
// (it wraps ErrNoGateway; the Result is then None); a protocol that does
// not answer is no error.
func Probe(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	res := Result{Protocol: None}
	gw, err := cfg.gateway()
	if err != nil {
		cfg.Logger.Debug("no gateway to ask", "err", err)
		return res, err
	}
	res.Gateway = gw.IP

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		answered = map[Protocol]bool{}
		pmpExt   netip.Addr
		upnpExt  netip.Addr
	)
	run := func(p Protocol, f func() (netip.Addr, error)) {
		if !cfg.enabled(p) {
			return
		}
		wg.Go(func() {
			ext, err := f()
			cfg.Logger.Debug("probe", "protocol", p, "gateway", gw.IP, "external", ext, "err", err)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			answered[p] = true
			switch p {
			case NATPMP:
				pmpExt = ext
			case UPnP:
				upnpExt = ext
			}
		})
	}
	run(PCP, func() (netip.Addr, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.pmpTimeout)
		defer cancel()
		return netip.Addr{}, pcpAnnounce(ctx, cfg, gw)
	})
	run(NATPMP, func() (netip.Addr, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.pmpTimeout)
		defer cancel()
		return pmpExternal(ctx, cfg, gw)
	})
	run(UPnP, func() (netip.Addr, error) {
		u, err := upnpDiscover(ctx, cfg, gw)
		if err != nil {
			return netip.Addr{}, err
		}
		return u.external, nil
	})
	wg.Wait()

	for _, p := range preference {
		if answered[p] {
			res.Answered = append(res.Answered, p)
		}
	}
	if len(res.Answered) > 0 {
		res.Protocol = res.Answered[0]
	}
	res.External = pmpExt
	if !res.External.IsValid() {
		res.External = upnpExt
	}
	cfg.Logger.Info("port mapping probe", "gateway", gw.IP, "protocol", res.Protocol, "answered", res.Answered, "external", res.External)
	return res, nil
}
