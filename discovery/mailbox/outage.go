package mailbox

import (
	"context"
	"errors"
	"time"
)

// storeOutageGrace is how long a claimed mailbox's pusher waits for a
// store that stopped answering (Redis restarting) before it gives up on
// the connection with ErrStoreUnavailable. It is shorter than the
// clients' idle timeout, which their keepalives hold off meanwhile.
const storeOutageGrace = 30 * time.Second

// storeOutage paces retries while a store does not answer: 100 ms apart,
// doubling to 2 s, for grace in all from the first wait. The server's
// pusher and clients' requests (RetryUnavailable) both use it.
type storeOutage struct {
	grace time.Duration
	since time.Time
	delay time.Duration
}

// wait sleeps before the next try and reports whether to try again: not
// once grace has passed or ctx has ended.
func (o *storeOutage) wait(ctx context.Context) bool {
	now := time.Now()
	if o.since.IsZero() {
		o.since, o.delay = now, 100*time.Millisecond
	}
	if now.Add(o.delay).After(o.since.Add(o.grace)) {
		return false
	}
	t := time.NewTimer(o.delay)
	defer t.Stop()
	o.delay = min(2*o.delay, 2*time.Second)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RetryUnavailable runs op until it succeeds, fails with anything but
// ErrStoreUnavailable, grace has passed, or ctx ends, paced as the
// server's own waits for its store. Mailbox requests are safe to repeat:
// a refused one changed nothing, and a repeated message is one the peer
// has already read or reads once.
func RetryUnavailable(ctx context.Context, grace time.Duration, op func() error) error {
	o := storeOutage{grace: grace}
	for {
		err := op()
		if !errors.Is(err, ErrStoreUnavailable) || !o.wait(ctx) {
			return err
		}
	}
}
