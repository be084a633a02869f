package transport

import (
	"context"
	"crypto/rand"
	"net/netip"
	"time"
)

// validation is one PATH_CHALLENGE in flight: the endpoint proves that the
// peer receives at remote before it sends there. Only a PATH_RESPONSE with
// the same random data, authenticated, arriving on the same carrier from the
// same address, completes it.
type validation struct {
	remote   netip.AddrPort
	carrier  Carrier
	data     [8]byte
	trigger  validationTrigger
	reason   PathChangeReason
	deadline time.Time
	next     time.Time
	gap      time.Duration
	waiters  []chan error
}

// validationTrigger says what started a validation. Each kind has its own
// budget of slots, so spoofed QUIC packets (which anyone who saw a router
// tag can send) never lock out the peer's authenticated packets.
type validationTrigger int

const (
	// triggerQUIC: a QUIC packet with our tag from a new address; quic-go
	// authenticates it only later, so it may be spoofed.
	triggerQUIC validationTrigger = iota
	// triggerControl: an authenticated, fresh control packet sent on the
	// peer's active path, from a new address.
	triggerControl
	// triggerMigrate: this side's Migrate.
	triggerMigrate
)

// passive reports whether the peer's packets (not this side) started it.
func (t validationTrigger) passive() bool { return t != triggerMigrate }

// maxPassiveValidations bounds the validations one trigger kind may have in
// flight at once: a real peer moves to one address at a time, and spoofed
// packets must not make an endpoint challenge many addresses.
const maxPassiveValidations = 4

func (v *validation) finish(err error) {
	for _, w := range v.waiters {
		w <- err
	}
	v.waiters = nil
}

// maybeStartPassiveLocked starts validating from after a packet (QUIC, or
// control sent on the peer's active path) arrived from it while the active
// path points elsewhere.
func (e *endpoint) maybeStartPassiveLocked(from netip.AddrPort, c Carrier, trigger validationTrigger) {
	if e.state != StateEstablished && e.state != StateValidatingPath {
		return
	}
	cur := e.path.Load()
	if cur == nil {
		return
	}
	sameKind := c.Kind() == cur.carrier.Kind()
	if cur.remote == from && sameKind {
		// The same address through another local socket of ours is a
		// straggler to an old socket after a rebind, not a move.
		return
	}
	if c.Kind().rank() > cur.carrier.Kind().rank() {
		return // see upgrade.go: never to a worse kind of path passively
	}
	if _, ok := e.validations[from]; ok {
		return
	}
	if until, ok := e.holdDown[from]; ok && time.Now().Before(until) {
		return
	}
	inFlight := 0
	for _, v := range e.validations {
		if v.trigger == trigger {
			inFlight++
		}
	}
	if inFlight >= maxPassiveValidations {
		return
	}
	e.log.Debug("packet from a new address, validating", "remote", from)
	// A challenge to a new address of the same kind goes out on the active
	// carrier; one to another kind of path (a direct address while
	// relayed) the way the packet came in, the only way there.
	if sameKind {
		c = cur.carrier
	}
	e.startValidationLocked(c, from, trigger, ReasonPeerMoved)
}

func (e *endpoint) startValidationLocked(c Carrier, remote netip.AddrPort, trigger validationTrigger, reason PathChangeReason) *validation {
	now := time.Now()
	v := &validation{
		remote:   remote,
		carrier:  c,
		trigger:  trigger,
		reason:   reason,
		deadline: now.Add(e.s.cfg.ValidationTimeout),
		gap:      e.s.cfg.ValidationRetransmit,
	}
	_, _ = rand.Read(v.data[:])
	e.validations[remote] = v
	e.state = StateValidatingPath
	e.sendChallengeLocked(v, now)
	return v
}

// sendChallengeLocked sends (or resends) v's PATH_CHALLENGE. The peer's
// packets from the address pay for challenges of a passive validation: an
// address nobody proved draws no more bytes than it sent.
func (e *endpoint) sendChallengeLocked(v *validation, now time.Time) {
	v.next = now.Add(v.gap)
	v.gap = min(v.gap*2, e.s.cfg.ValidationTimeout)
	if v.trigger.passive() && !e.budget.spend(v.remote, MinControlLen) {
		return
	}
	e.counters.challengesSent.Add(1)
	e.sendEstablishedLocked(v.carrier, v.remote, &ControlPacket{Type: CtrlPathChallenge, Data: v.data})
}

func (e *endpoint) tickValidationsLocked(now time.Time) {
	for remote, v := range e.validations {
		switch {
		case now.After(v.deadline):
			e.failValidationLocked(v, ErrValidationTimeout)
			e.log.Debug("path validation timed out", "remote", remote)
		case !now.Before(v.next):
			e.sendChallengeLocked(v, now)
		}
	}
}

func (e *endpoint) failValidationLocked(v *validation, err error) {
	e.counters.validationsFailed.Add(1)
	delete(e.validations, v.remote)
	e.holdDown[v.remote] = time.Now().Add(e.s.cfg.HoldDown)
	v.finish(err)
	e.settleStateLocked()
}

func (e *endpoint) settleStateLocked() {
	if e.state == StateValidatingPath && len(e.validations) == 0 {
		e.state = StateEstablished
	}
}

func (e *endpoint) handlePathResponseLocked(p *ControlPacket, from netip.AddrPort, c Carrier) {
	v, ok := e.validations[from]
	if !ok || v.carrier != c || v.data != p.Data {
		return
	}
	if v.trigger.passive() && p.Flags&FlagActivePath == 0 {
		// The peer still answers there, but no longer sends from there
		// (a straggler from its old socket): do not move back.
		e.failValidationLocked(v, ErrInactivePath)
		return
	}
	delete(e.validations, from)
	if p.Flags&FlagActivePath != 0 {
		// Relay packets the peer sent before this one are older claims.
		e.activeClaim = max(e.activeClaim, p.Counter)
	}
	e.setPathLocked(c, from, v.reason)
	v.finish(nil)
	e.settleStateLocked()
}

// migrate validates remote through the active carrier and, on success, makes
// it the active path.
func (e *endpoint) migrate(ctx context.Context, remote netip.AddrPort) error {
	remote = UnmapAddrPort(remote)
	wait := make(chan error, 1)
	e.mu.Lock()
	switch e.state {
	case StateClosed:
		e.mu.Unlock()
		return ErrClosed
	case StateConnecting:
		e.mu.Unlock()
		return ErrNotEstablished
	}
	cur := e.path.Load()
	if cur.remote == remote {
		e.mu.Unlock()
		return nil
	}
	v, ok := e.validations[remote]
	if !ok {
		v = e.startValidationLocked(cur.carrier, remote, triggerMigrate, ReasonMigrated)
	}
	v.trigger = triggerMigrate
	v.reason = ReasonMigrated
	if dl, ok := ctx.Deadline(); ok && dl.After(v.deadline) {
		v.deadline = dl
	}
	v.waiters = append(v.waiters, wait)
	e.mu.Unlock()
	// Without a ctx deadline, the validation's own deadline (the tick loop)
	// ends the wait with ErrValidationTimeout.

	select {
	case err := <-wait:
		return err
	case <-ctx.Done():
		e.mu.Lock()
		if cur, ok := e.validations[remote]; ok && cur == v {
			e.failValidationLocked(v, ctx.Err())
		}
		e.mu.Unlock()
		// failValidationLocked may have delivered to wait already.
		select {
		case err := <-wait:
			if err == nil {
				return nil
			}
		default:
		}
		return ctx.Err()
	}
}
