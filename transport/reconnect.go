package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// reconnectRetry spaces connection attempts that fail at once (a refused
// relay, a closed socket about to be replaced): the peer needs a moment
// to notice the loss too, and a tight loop would only burn packets.
const reconnectRetry = 500 * time.Millisecond

// retryGap is reconnectRetry give or take half of it, drawn afresh for
// every gap. Both sides retry at once after a loss, and a relay pairs two
// sides only while both wait at it: with equal fixed gaps their waits keep
// the phase they started with, and two sides out of step by more than one
// wait never meet (a relay test with 100 ms waits failed 6 times in 15).
func retryGap() time.Duration {
	return reconnectRetry/2 + rand.N(reconnectRetry)
}

// Reconnect connects to the same paired peer again after a connection was
// lost, each try a fresh attempt with fresh keys, until one succeeds or
// ctx ends. A peer whose certificate does not match fails at once with
// ErrPeerCertificate; otherwise the error of the last try is returned,
// wrapped with ctx's.
func (s *Socket) Reconnect(ctx context.Context, p Peer) (*Conn, error) {
	for {
		c, err := s.Connect(ctx, p)
		if err == nil || errors.Is(err, ErrPeerCertificate) || errors.Is(err, ErrClosed) {
			return c, err
		}
		s.log.Debug("reconnect attempt failed", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(retryGap()):
		}
	}
}
