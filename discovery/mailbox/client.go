package mailbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"ferry/discovery/code"
)

const (
	// dialTimeout bounds Dial's handshake when ctx has no earlier deadline.
	dialTimeout = 10 * time.Second
	// closeTimeout bounds Close's wait for "closed".
	closeTimeout = 5 * time.Second
)

// defaultKeepalive is how often a Client pings the server so that the
// server's idle timeout (2 minutes by default) does not close it.
const defaultKeepalive = 30 * time.Second

// Client is one side's connection to a mailbox server. Its methods are safe
// for concurrent use; every blocking method takes a ctx. A Client owns one
// reader goroutine, which exits when the connection closes.
type Client struct {
	nc    net.Conn
	side  string
	relay string // the server's advertised relay, from its welcome
	alt   uint16 // the server's second STUN port, from its welcome

	wmu sync.Mutex // serializes frame writes

	mu        sync.Mutex
	nextID    uint64
	pending   map[uint64]chan *frame
	inbox     []Message     // messages from the other side not yet received
	wake      chan struct{} // closed and replaced when inbox or err change
	serverErr *Error        // why the server is closing the connection
	err       error         // terminal error, set when the reader exits
	closing   bool          // Close was called
	keepalive *time.Timer
	every     time.Duration // keepalive interval

	done      chan struct{} // closed when the reader goroutine exits
	closeOnce sync.Once
}

// Dial connects to the mailbox server at addr (host:port) and performs the
// hello/welcome handshake under a fresh random side. Errors the server
// reports are *Error values, e.g. Code CodeUnsupportedVersion when the server
// speaks another protocol version.
func Dial(ctx context.Context, addr string) (*Client, error) {
	return dialWithKeepalive(ctx, addr, defaultKeepalive)
}

// DialSide is Dial under a given side (16 lowercase hex characters, as
// Side returns), so that a peer reconnecting after a network change keeps
// its place in a meet mailbox: Meet with the same side rejoins the same
// mailbox and replays its messages.
func DialSide(ctx context.Context, addr, side string) (*Client, error) {
	if !validSide(side) {
		return nil, fmt.Errorf("mailbox: side %q is not 16 lowercase hex characters", side)
	}
	return dialAs(ctx, addr, side, defaultKeepalive)
}

// dialWithKeepalive is Dial with the keepalive interval given (tests shorten it).
func dialWithKeepalive(ctx context.Context, addr string, keepalive time.Duration) (*Client, error) {
	side, err := newSide()
	if err != nil {
		return nil, err
	}
	return dialAs(ctx, addr, side, keepalive)
}

// dialAs connects and says hello under side.
func dialAs(ctx context.Context, addr, side string, keepalive time.Duration) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mailbox: dial %s: %w", addr, err)
	}
	w, err := handshake(ctx, nc, side)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &Client{
		nc:      nc,
		side:    side,
		relay:   w.Relay,
		alt:     uint16(w.STUNAlt),
		pending: make(map[uint64]chan *frame),
		wake:    make(chan struct{}),
		done:    make(chan struct{}),
		every:   keepalive,
	}
	c.mu.Lock()
	c.keepalive = time.AfterFunc(keepalive, c.ping)
	c.mu.Unlock()
	go c.readLoop()
	return c, nil
}

func newSide() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mailbox: random side: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// handshake sends hello and reads welcome, bounded by ctx and dialTimeout,
// and returns the welcome.
func handshake(ctx context.Context, nc net.Conn, side string) (*frame, error) {
	deadline := time.Now().Add(dialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(what string, err error) (*frame, error) {
		if err := ctxDone(ctx); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("mailbox: %s: %w", what, err)
	}

	v := ProtocolVersion
	b, err := encodeFrame(&frame{Type: typeHello, Version: &v, Side: side})
	if err != nil {
		return nil, err
	}
	if _, err := nc.Write(b); err != nil {
		return fail("send hello", err)
	}
	payload, err := readFrame(nc)
	if err != nil {
		return fail("read welcome", err)
	}
	f, err := decodeFrame(payload)
	if err != nil {
		return fail("bad welcome", err)
	}
	switch {
	case f.Type == typeError:
		return nil, &Error{Code: f.Code, Message: f.Message}
	case f.Type != typeWelcome:
		return nil, fmt.Errorf("mailbox: expected welcome, got %q", f.Type)
	case f.Version == nil || *f.Version != ProtocolVersion:
		return nil, fmt.Errorf("mailbox: server welcomed with another protocol version")
	case f.Relay != "" && code.ValidateRendezvous(f.Relay) != nil:
		return nil, fmt.Errorf("mailbox: server advertised a malformed relay address")
	case f.STUNAlt < 0 || f.STUNAlt > 0xffff:
		return nil, fmt.Errorf("mailbox: server advertised a malformed STUN port")
	}
	if !stop() {
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return f, nil
}

// Relay returns the relay address the server advertised in its welcome
// (HOST:PORT), or "" when it advertised none: then the address this
// client dialed is the relay too.
func (c *Client) Relay() string { return c.relay }

// STUNAltPort returns the server's second STUN port, on the address this
// client dialed, or 0 when it announced none.
func (c *Client) STUNAltPort() uint16 { return c.alt }

// Side returns this client's side: 16 hex characters (random, unless
// given to DialSide) that identify it to the server and to the other side.
func (c *Client) Side() string { return c.side }

// Done is closed once the connection has ended (closed by either end, or
// lost); the next call then returns its terminal error.
func (c *Client) Done() <-chan struct{} { return c.done }

// Allocate asks the server for a fresh nameplate. It does not claim it.
func (c *Client) Allocate(ctx context.Context) (nameplate string, err error) {
	r, err := c.request(ctx, &frame{Type: typeAllocate}, typeAllocated)
	if err != nil {
		return "", err
	}
	if r.Nameplate == "" {
		return "", errors.New("mailbox: server allocated an empty nameplate")
	}
	return r.Nameplate, nil
}

// Claim joins the mailbox of nameplate. Errors include ErrNoSuchNameplate,
// ErrCrowded and ErrAlreadyClaimed (compare with errors.Is).
func (c *Client) Claim(ctx context.Context, nameplate string) error {
	if nameplate == "" || len(nameplate) > maxNameplate {
		return ErrNoSuchNameplate
	}
	_, err := c.request(ctx, &frame{Type: typeClaim, Nameplate: nameplate}, typeClaimed)
	return err
}

// Meet joins the mailbox of a meet nameplate (see ValidMeetNameplate),
// creating the nameplate if the other side has not yet: two sides that
// share a secret derive the same name from it and meet again without a new
// code. It answers like Claim: errors include ErrCrowded,
// ErrAlreadyClaimed and ErrTooManyNameplates (compare with errors.Is); an
// invalid name is refused locally with an *Error of Code CodeBadRequest,
// without asking the server.
func (c *Client) Meet(ctx context.Context, nameplate string) error {
	if !ValidMeetNameplate(nameplate) {
		return errBadMeetNameplate
	}
	_, err := c.request(ctx, &frame{Type: typeMeet, Nameplate: nameplate}, typeClaimed)
	return err
}

// Add sends body under phase to the claimed mailbox. phase is 1 to 32
// characters of [a-z0-9_-]; body is at most DefaultMaxBody bytes.
func (c *Client) Add(ctx context.Context, phase string, body []byte) error {
	if !validPhase(phase) {
		return fmt.Errorf("mailbox: invalid phase %q", phase)
	}
	if len(body) > DefaultMaxBody {
		return fmt.Errorf("mailbox: body of %d bytes exceeds %d", len(body), DefaultMaxBody)
	}
	_, err := c.request(ctx, &frame{Type: typeAdd, Phase: phase, Body: encodeBody(body)}, typeAdded)
	return err
}

// Receive returns the next message from the OTHER side with the given phase
// (messages of other phases are kept for later Receive calls; own messages
// are skipped). Messages that arrived before the connection closed are still
// returned; after that it returns the connection's terminal error.
func (c *Client) Receive(ctx context.Context, phase string) ([]byte, error) {
	if !validPhase(phase) {
		return nil, fmt.Errorf("mailbox: invalid phase %q", phase)
	}
	for {
		c.mu.Lock()
		for i, m := range c.inbox {
			if m.Phase == phase {
				c.inbox = slices.Delete(c.inbox, i, i+1)
				c.mu.Unlock()
				return m.Body, nil
			}
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Release leaves the nameplate so that it can be reused; the mailbox stays
// open until Close.
func (c *Client) Release(ctx context.Context) error {
	_, err := c.request(ctx, &frame{Type: typeRelease}, typeReleased)
	return err
}

// Close leaves the mailbox with mood, waits (a few seconds at most) for the
// server's confirmation and closes the connection. Use Scary when the other
// side did not know the code: the server then burns the nameplate. The
// connection is closed even when Close returns an error; if ctx is already
// done, Close just drops the connection.
func (c *Client) Close(ctx context.Context, mood Mood) error {
	defer c.shutdown()
	if !mood.valid() {
		return fmt.Errorf("mailbox: invalid mood %q", mood)
	}
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	_, err := c.request(ctx, &frame{Type: typeClose, Mood: string(mood)}, typeClosed)
	return err
}

// shutdown closes the connection and waits for the reader goroutine.
func (c *Client) shutdown() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.nc.Close()
	})
	<-c.done
}

// request sends f with a fresh id and waits for the frame answering it,
// which must be of type want or an error.
func (c *Client) request(ctx context.Context, f *frame, want string) (*frame, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan *frame, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	f.ID = &id
	if err := c.send(ctx, f); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return answer(r, want)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		select {
		case r := <-ch:
			return answer(r, want)
		default:
			return nil, c.terminalErr()
		}
	}
}

func answer(r *frame, want string) (*frame, error) {
	switch r.Type {
	case want:
		return r, nil
	case typeError:
		return nil, &Error{Code: r.Code, Message: r.Message}
	}
	return nil, fmt.Errorf("mailbox: expected %s, got %q", want, r.Type)
}

// send writes one frame. A failed write may have left half a frame on the
// wire, so it closes the connection.
func (c *Client) send(ctx context.Context, f *frame) error {
	b, err := encodeFrame(f)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline := time.Now().Add(writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetWriteDeadline(deadline)
	if _, err := c.nc.Write(b); err != nil {
		c.nc.Close()
		<-c.done
		if err := ctxDone(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return c.terminalErr()
	}
	return nil
}

// ctxDone returns ctx's error, or context.DeadlineExceeded once ctx's
// deadline has passed even if its timer has not fired yet (a socket deadline
// set from it may fire first).
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *Client) terminalErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return ErrClosed
	}
	return c.err
}

// ping is the keepalive timer's function.
func (c *Client) ping() {
	c.mu.Lock()
	if c.err != nil || c.closing {
		c.mu.Unlock()
		return
	}
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if c.send(ctx, &frame{Type: typePing, ID: &id}) != nil {
		return
	}
	c.mu.Lock()
	if c.err == nil {
		c.keepalive.Reset(c.every)
	}
	c.mu.Unlock()
}

// readLoop is the Client's reader goroutine: it routes responses to waiting
// requests and the other side's messages to the inbox, until the connection
// closes.
func (c *Client) readLoop() {
	var rerr error
	for {
		payload, err := readFrame(c.nc)
		if err != nil {
			rerr = err
			break
		}
		f, err := decodeFrame(payload)
		if err != nil {
			rerr = err
			break
		}
		c.dispatch(f)
	}
	c.nc.Close()
	c.mu.Lock()
	c.keepalive.Stop()
	switch {
	case c.serverErr != nil:
		c.err = &closedError{cause: c.serverErr}
	case c.closing:
		c.err = ErrClosed
	default:
		c.err = fmt.Errorf("%w: %v", ErrClosed, rerr)
	}
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
	close(c.done)
}

func (c *Client) dispatch(f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case f.ID != nil:
		if ch := c.pending[*f.ID]; ch != nil {
			delete(c.pending, *f.ID)
			ch <- f
		}
	case f.Type == typeMessage:
		if f.Side == c.side || f.Body == nil {
			return
		}
		body, err := base64.StdEncoding.DecodeString(*f.Body)
		if err != nil {
			return
		}
		c.inbox = append(c.inbox, Message{Side: f.Side, Phase: f.Phase, Body: body})
		close(c.wake)
		c.wake = make(chan struct{})
	case f.Type == typeError:
		if c.serverErr == nil {
			c.serverErr = &Error{Code: f.Code, Message: f.Message}
		}
	}
}
