package transfer

import (
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"
)

// Reconnector returns a new connection to the same peer after the previous
// one was lost, or an error when the peer cannot be reached again (ctx
// bounds the wait). The session layer supplies it; Send and Receive call it
// and then resume the transfer on the new connection without asking the
// user again.
type Reconnector func(ctx context.Context) (Conn, error)

// connectionLost reports whether err means the connection died under a
// transfer that both sides still want (silence until the idle timeout, a
// stateless reset), as opposed to a peer that closed it on purpose, an
// error of the transfer itself, or a local cancellation.
func connectionLost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var idle *quic.IdleTimeoutError
	var reset *quic.StatelessResetError
	var hs *quic.HandshakeTimeoutError
	return errors.As(err, &idle) || errors.As(err, &reset) || errors.As(err, &hs)
}

// reconnect waits for a new connection after the previous one was lost,
// reporting the state.
func reconnect(ctx context.Context, again Reconnector, emit Sink) (Conn, error) {
	emit(Event{Kind: EventState, State: StateReconnecting})
	conn, err := again(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Kind: KindPeerGone, Err: fmt.Errorf("the connection to the other side was lost and could not be re-established: %w", err),
			Hint: "run the same command again on both sides to resume (a new code is fine)"}
	}
	return conn, nil
}

// mayReconnect reports whether a failed attempt should wait for a new
// connection.
func mayReconnect(again Reconnector, err error) bool {
	return again != nil && connectionLost(err)
}
