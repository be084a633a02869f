package discovery

import (
	"context"
	"time"

	"ferry/discovery/mailbox"
)

// storeRetryFor is how long a mailbox request refused because the
// server's store does not answer (Redis restarting) is tried again before
// pairing gives up with that error.
const storeRetryFor = 20 * time.Second

// retryStore runs op, trying again for up to storeRetryFor while the
// server's store is unavailable (mailbox.RetryUnavailable).
func retryStore(ctx context.Context, op func() error) error {
	return mailbox.RetryUnavailable(ctx, storeRetryFor, op)
}
