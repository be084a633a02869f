package portmap

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// Keeper schedule. Half the lifetime is the renewal point RFC 6886
// recommends; a failed renewal is retried at a quarter of what is left
// (at least renewRetryMin), so several tries fit before the mapping
// expires.
const (
	// renewRetryMin spaces retries of a failed renewal.
	renewRetryMin = time.Second
	// mapRetry spaces attempts to create a mapping after all protocols
	// failed: a gateway that answers nothing now rarely starts to within
	// seconds, and each attempt costs up to a second and a half of
	// probing.
	mapRetry = 30 * time.Second
	// permanentRefresh is how often a permanent UPnP mapping is asked
	// for again, to restore it after a router restart.
	permanentRefresh = 5 * time.Minute
)

// Update is the state of a Keeper's mapping.
type Update struct {
	// Protocol is the protocol holding the mapping, or None.
	Protocol Protocol
	// External is the mapped public address and port; invalid while no
	// mapping is held (not yet, lost, or deleted at the end).
	External netip.AddrPort
	// Lifetime is the lifetime the router granted at the last request.
	Lifetime time.Duration
	// Renewals counts successful renewals of the current mapping.
	Renewals int
	// Err is the last failure, nil after a success.
	Err error
}

// Keeper maps a port and keeps it mapped: it renews at half the
// lifetime, maps again if the mapping is lost, reports each change on
// Updates, and deletes the mapping when its context ends or Close is
// called. It owns one goroutine.
type Keeper struct {
	updates   chan Update
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// Keep starts a Keeper for internalPort on proto ("udp" or "tcp"),
// asking for lifetime at each request. It returns at once: the first
// mapping is made on the Keeper's goroutine, so nothing (pairing least of
// all) waits for the router.
func Keep(ctx context.Context, cfg Config, proto string, internalPort uint16, lifetime time.Duration) *Keeper {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	k := &Keeper{updates: make(chan Update, 1), cancel: cancel, done: make(chan struct{})}
	go k.run(ctx, cfg, proto, internalPort, lifetime)
	return k
}

// Updates delivers the mapping's state after each change: mapped,
// renewed (with Renewals counting up), failed, lost, deleted. Only the
// latest state is kept for a slow reader, so reading never holds the
// keeper up. The channel is closed after the mapping has been deleted.
func (k *Keeper) Updates() <-chan Update { return k.updates }

// Done is closed when the keeper has stopped and its mapping is deleted
// (or the deletion gave up after deleteTimeout).
func (k *Keeper) Done() <-chan struct{} { return k.done }

// Close stops the keeper and waits until it has deleted the mapping,
// which takes at most deleteTimeout after an interrupted request.
func (k *Keeper) Close() {
	k.closeOnce.Do(k.cancel)
	<-k.done
}

// publish replaces any unread update with u. The keeper's goroutine is
// the only sender, so the send after the drain cannot block.
func (k *Keeper) publish(u Update) {
	select {
	case <-k.updates:
	default:
	}
	k.updates <- u
}

func (k *Keeper) run(ctx context.Context, cfg Config, proto string, port uint16, lifetime time.Duration) {
	defer close(k.done)
	defer close(k.updates)
	var (
		m     *Mapping
		state Update
		timer = time.NewTimer(0)
		until time.Time // when the current mapping expires
	)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if m != nil {
				// The caller's context has ended: delete on a context
				// of our own, bounded by deleteTimeout.
				_ = m.Delete(context.WithoutCancel(ctx))
			}
			k.publish(Update{Protocol: None})
			return
		case <-timer.C:
		}
		now := time.Now()
		if m == nil {
			nm, err := Map(ctx, cfg, proto, port, lifetime)
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				state = Update{Protocol: None, Err: err}
				k.publish(state)
				timer.Reset(mapRetry)
				continue
			}
			m = nm
			state = Update{Protocol: m.Protocol, External: m.External, Lifetime: m.Lifetime}
			k.publish(state)
			until = now.Add(m.Lifetime)
			timer.Reset(renewAfter(m.Lifetime))
			continue
		}
		err := m.Renew(ctx)
		if ctx.Err() != nil {
			continue
		}
		if err == nil {
			state.Renewals++
			state.External, state.Lifetime, state.Err = m.External, m.Lifetime, nil
			cfg.Logger.Debug("port mapping renewed", "protocol", m.Protocol, "external", m.External, "lifetime", m.Lifetime)
			k.publish(state)
			until = now.Add(m.Lifetime)
			timer.Reset(renewAfter(m.Lifetime))
			continue
		}
		cfg.Logger.Debug("port mapping renewal failed", "protocol", m.Protocol, "err", err)
		left := time.Until(until)
		if m.Lifetime > 0 && left <= 0 {
			// Expired: start over, with whichever protocol answers now.
			cfg.Logger.Info("port mapping lost", "protocol", m.Protocol, "external", m.External, "err", err)
			m = nil
			state = Update{Protocol: None, Err: err}
			k.publish(state)
			timer.Reset(0)
			continue
		}
		state.Err = err
		k.publish(state)
		timer.Reset(max(left/4, renewRetryMin))
	}
}

// renewAfter is when to renew a mapping granted lifetime: at half of
// it, or every permanentRefresh for a permanent one.
func renewAfter(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return permanentRefresh
	}
	return lifetime / 2
}
