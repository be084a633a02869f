package discovery

import (
	"context"
	"errors"
	"time"

	"ferry/discovery/mailbox"
)

// storeRetryFor is how long a mailbox request refused because the
// server's store does not answer (Redis restarting) is tried again before
// pairing gives up with that error.
const storeRetryFor = 20 * time.Second

// retryStore runs op until it succeeds, fails with anything but
// mailbox.ErrStoreUnavailable, storeRetryFor has passed, or ctx ends:
// 100 ms apart, doubling to 2 s. Mailbox requests are safe to repeat: a
// refused one changed nothing, and a repeated message is one the peer
// has already read or reads once.
func retryStore(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(storeRetryFor)
	delay := 100 * time.Millisecond
	for {
		err := op()
		if !errors.Is(err, mailbox.ErrStoreUnavailable) || time.Now().Add(delay).After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		delay = min(2*delay, 2*time.Second)
	}
}
