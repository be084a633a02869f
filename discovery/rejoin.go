package discovery

import (
	"context"

	"ferry/discovery/mailbox"
)

// maxRejoins bounds how often one pairing follows its server away.
const maxRejoins = 3

// rejoiningMailbox is the Mailbox pairing runs over: a mailbox client
// that, when its server goes away on purpose (a drain or shutdown: the
// error says to connect again) or its store stays unavailable, connects
// again to the same rendezvous address under the same side and claims the
// same nameplate. Behind a name that leads to several servers sharing a
// store, that is another server, where the mailbox and its messages wait:
// the pairing carries on with the same code. With no shared store the
// claim fails and the original error stands.
type rejoiningMailbox struct {
	c         *mailbox.Client
	addr      string // the rendezvous address; "" never rejoins (a LAN mailbox)
	nameplate string
	rejoins   int
}

// Add implements Mailbox. A server whose store does not answer refuses
// the message on a live connection: it is sent again (retryStore).
func (m *rejoiningMailbox) Add(ctx context.Context, phase string, body []byte) error {
	return m.retry(ctx, func() error {
		return retryStore(ctx, func() error { return m.c.Add(ctx, phase, body) })
	})
}

// Receive implements Mailbox. Messages the new connection replays that
// were already received stay unread: pairing asks for each phase once.
func (m *rejoiningMailbox) Receive(ctx context.Context, phase string) (body []byte, err error) {
	err = m.retry(ctx, func() (err error) {
		body, err = m.c.Receive(ctx, phase)
		return err
	})
	return body, err
}

// Close implements Mailbox.
func (m *rejoiningMailbox) Close(ctx context.Context, mood mailbox.Mood) error {
	return m.c.Close(ctx, mood)
}

// Release leaves the nameplate (mailbox.Client.Release).
func (m *rejoiningMailbox) Release(ctx context.Context) error { return m.c.Release(ctx) }

// retry runs op, and again over a new connection while the server says to
// connect again, at most maxRejoins times in all.
func (m *rejoiningMailbox) retry(ctx context.Context, op func() error) error {
	for {
		err := op()
		if err == nil || m.addr == "" || m.rejoins >= maxRejoins || !mailbox.Retryable(err) || !m.connectionGone() {
			return err
		}
		m.rejoins++
		c, derr := mailbox.DialSide(ctx, m.addr, m.c.Side())
		if derr != nil {
			return err
		}
		if cerr := retryStore(ctx, func() error { return c.Claim(ctx, m.nameplate) }); cerr != nil {
			dropConnection(c)
			return err
		}
		dropConnection(m.c)
		m.c = c
	}
}

// connectionGone reports whether m.c's connection has ended (a refused
// request on a live connection is retried by retryStore instead).
func (m *rejoiningMailbox) connectionGone() bool {
	select {
	case <-m.c.Done():
		return true
	default:
		return false
	}
}

// dropConnection closes c's connection without telling the server
// anything: to the server it is a disconnect, which ends c's claim only
// (a side's other connection keeps its place).
func dropConnection(c *mailbox.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(ctx, mailbox.Lonely)
}
