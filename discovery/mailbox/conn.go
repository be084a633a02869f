package mailbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// storeTimeout bounds each Store call made for a connection.
const storeTimeout = 5 * time.Second

// conn serves one client connection. Its serve goroutine (the reader) owns
// the connection's state; once a nameplate is claimed a second goroutine,
// the pusher, writes the mailbox's messages. Writes are serialized by wmu.
type conn struct {
	s   *Server
	nc  net.Conn
	ip  string
	log *slog.Logger

	wmu sync.Mutex // serializes frame writes

	mu      sync.Mutex // guards closing and the read deadline
	closing bool       // the final frame was sent; only drain from now on

	// Owned by the reader goroutine.
	side      string
	limiter   *tokenBucket
	allocated []string // nameplates this connection allocated
	nameplate string   // claimed nameplate
	logName   string   // nameplate as logged: logNameplate(nameplate)
	mailbox   string   // its mailbox
	released  bool
	closedMB  bool // the mailbox was closed with a mood
	pushStop  context.CancelFunc
	pushDone  chan struct{}

	// Accounting for Stats (stats.go), owned by the reader goroutine.
	held    map[string]bool // nameplates counted as held by this connection
	leftMB  bool            // the mailbox is no longer counted as open here
	settled map[string]bool // allocated nameplates whose pairing was counted
	expired atomic.Bool     // set by the pusher: the claimed nameplate expired
}

func newConn(s *Server, nc net.Conn) *conn {
	ip := clientIP(nc.RemoteAddr())
	return &conn{
		s:   s,
		nc:  nc,
		ip:  ip,
		log: s.log.With("remote", ip),
	}
}

// serve runs the connection until it ends and then cleans up after it.
func (c *conn) serve() {
	defer c.s.connDone(c)
	defer c.cleanup()
	defer c.recoverPanic("connection handler")
	c.run()
}

// recoverPanic keeps a bug (or a misbehaving Store) from taking the whole
// server down: the panic is logged and only this connection ends.
func (c *conn) recoverPanic(where string) {
	if r := recover(); r != nil {
		c.log.Error("mailbox "+where+" panicked", "panic", r, "stack", string(debug.Stack()))
		c.finish(errorFrame(nil, errInternal))
	}
}

var errInternal = &Error{Code: CodeInternal, Message: "internal server error"}

func (c *conn) run() {
	if !c.handshake() {
		return
	}
	c.limiter = newTokenBucket(c.s.cfg.RequestRate, c.s.cfg.RequestBurst, time.Now())
	for {
		if !c.armRead(c.s.cfg.IdleTimeout) {
			c.drain()
			return
		}
		payload, err := readFrame(c.nc)
		if c.isClosing() {
			c.drain()
			return
		}
		if err != nil {
			c.readFailed(err, c.s.cfg.IdleTimeout)
			return
		}
		req, perr := parseRequest(payload, c.s.cfg.MaxBody)
		if perr != nil {
			c.fail(perr)
			return
		}
		if !c.limiter.allow(time.Now()) {
			c.s.stats.countRateLimited(LimitRequests)
			if !c.reply(errorFrame(&req.id, ErrRateLimited)) {
				return
			}
			continue
		}
		if !c.handle(req) {
			return
		}
	}
}

// handshake reads and answers hello. It reports whether the connection
// should go on.
func (c *conn) handshake() bool {
	if !c.armRead(c.s.cfg.HelloTimeout) {
		c.drain()
		return false
	}
	payload, err := readFrame(c.nc)
	if c.isClosing() {
		c.drain()
		return false
	}
	if err != nil {
		c.readFailed(err, c.s.cfg.HelloTimeout)
		return false
	}
	h, perr := parseHello(payload)
	if perr != nil {
		c.fail(perr)
		return false
	}
	c.side = h.side
	c.log = c.log.With("side", c.side)
	c.log.Debug("mailbox client connected")
	v := ProtocolVersion
	return c.reply(&frame{Type: typeWelcome, Version: &v, Relay: c.s.cfg.Advertise, STUNAlt: c.s.cfg.STUNAltPort})
}

// handle executes one request. It reports whether the connection should go
// on.
func (c *conn) handle(req *request) bool {
	id := &req.id
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	store := c.s.store
	switch req.typ {
	case typePing:
		return c.reply(&frame{Type: typePong, ID: id})

	case typeAllocate:
		np, err := store.Allocate(ctx, AllocateRequest{
			Owner:       c.ip,
			Side:        c.side,
			Expires:     time.Now().Add(c.s.cfg.NameplateTTL),
			MaxPerOwner: c.s.cfg.MaxNameplatesPerIP,
		})
		if err != nil {
			return c.replyErr(id, "allocate", err)
		}
		c.allocated = append(c.allocated, np)
		c.holdNameplate(np)
		c.s.stats.countStarted()
		c.log.Info("nameplate allocated", "nameplate", np)
		return c.reply(&frame{Type: typeAllocated, ID: id, Nameplate: np})

	case typeClaim, typeMeet:
		if c.mailbox != "" {
			return c.reply(errorFrame(id, ErrAlreadyClaimed))
		}
		var mb string
		var err error
		if req.typ == typeMeet {
			mb, err = store.Meet(ctx, MeetRequest{
				Nameplate:   req.nameplate,
				Side:        c.side,
				Owner:       c.ip,
				Expires:     time.Now().Add(c.s.cfg.NameplateTTL),
				MaxPerOwner: c.s.cfg.MaxNameplatesPerIP,
			})
		} else {
			mb, err = store.Claim(ctx, req.nameplate, c.side)
		}
		if err != nil {
			return c.replyErr(id, req.typ, err, "nameplate", logNameplate(req.nameplate))
		}
		c.nameplate, c.logName, c.mailbox = req.nameplate, logNameplate(req.nameplate), mb
		c.holdNameplate(c.nameplate)
		c.s.stats.hold(&c.s.stats.mailboxes, mb)
		if req.typ == typeMeet {
			c.s.stats.countMeet()
			c.log.Info("meet nameplate claimed", "nameplate", c.logName)
		} else {
			c.log.Info("nameplate claimed", "nameplate", c.logName)
		}
		if !c.reply(&frame{Type: typeClaimed, ID: id}) {
			return false
		}
		c.startPusher()
		return true

	case typeAdd:
		if c.mailbox == "" {
			return c.reply(errorFrame(id, ErrNotClaimed))
		}
		err := store.Add(ctx, c.mailbox, Message{Side: c.side, Phase: req.phase, Body: req.body}, c.s.cfg.MaxMessages)
		if err != nil {
			return c.replyErr(id, "add", err, "nameplate", c.logName, "phase", req.phase)
		}
		c.log.Debug("message added", "nameplate", c.logName, "phase", req.phase, "bytes", len(req.body))
		return c.reply(&frame{Type: typeAdded, ID: id})

	case typeRelease:
		if c.mailbox == "" {
			return c.reply(errorFrame(id, ErrNotClaimed))
		}
		if !c.released {
			if err := store.Release(ctx, c.nameplate, c.side); err != nil {
				return c.replyErr(id, "release", err, "nameplate", c.logName)
			}
			c.released = true
			c.dropNameplate(c.nameplate)
			c.log.Debug("nameplate released", "nameplate", c.logName)
		}
		return c.reply(&frame{Type: typeReleased, ID: id})

	case typeClose:
		c.stopPusher()
		if c.mailbox != "" {
			if err := store.Close(ctx, c.mailbox, c.side, req.mood); err != nil {
				c.log.Error("mailbox store close failed", "nameplate", c.logName, "err", err)
			}
			c.closedMB = true
			c.dropNameplate(c.nameplate)
			c.leaveMailbox()
			c.settlePairings(req.mood)
			c.log.Info("mailbox closed", "nameplate", c.logName, "mood", string(req.mood))
			if req.mood == Scary {
				c.log.Warn("nameplate burned: a side reported a wrong code", "nameplate", c.logName)
			}
		}
		c.finish(&frame{Type: typeClosed, ID: id})
		c.drain()
		return false
	}
	// parseRequest admits no other type.
	c.fail(&protoError{id: id, code: CodeInternal, msg: "unhandled request type", fatal: true})
	return false
}

// startPusher starts the goroutine that writes the claimed mailbox's
// messages, earlier ones first, to the client.
func (c *conn) startPusher() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.pushStop, c.pushDone = cancel, done
	mailbox, nameplate := c.mailbox, c.logName
	go func() {
		defer close(done)
		defer c.recoverPanic("pusher")
		from := 0
		outage := storeOutage{grace: storeOutageGrace}
		for {
			msgs, changed, err := c.s.store.Watch(ctx, mailbox, from)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, ErrStoreUnavailable) && outage.wait(ctx) {
					// The store comes back (Redis restarting): the
					// pairing goes on where it was.
					continue
				}
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, ErrStoreUnavailable) {
					c.log.Warn("mailbox store unavailable for too long", "nameplate", nameplate, "err", err)
					c.finish(errorFrame(nil, ErrStoreUnavailable))
				} else if errors.Is(err, ErrExpired) {
					c.expired.Store(true)
					c.log.Info("nameplate expired before a second side claimed it", "nameplate", nameplate)
					c.finish(errorFrame(nil, ErrExpired))
				} else {
					c.log.Error("mailbox store watch failed", "nameplate", nameplate, "err", err)
					c.finish(errorFrame(nil, errInternal))
				}
				return
			}
			for _, m := range msgs {
				if ctx.Err() != nil {
					return
				}
				if err := c.write(&frame{Type: typeMessage, Side: m.Side, Phase: m.Phase, Body: encodeBody(m.Body)}); err != nil {
					c.nc.Close()
					return
				}
			}
			outage = storeOutage{grace: storeOutageGrace}
			from += len(msgs)
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
}

func (c *conn) stopPusher() {
	if c.pushStop != nil {
		c.pushStop()
		<-c.pushDone
		c.pushStop = nil
	}
}

// cleanup runs when the connection ends: a side that did not close its
// mailbox is closed as disconnected, and nameplates it allocated but nobody
// claimed are released. After a drain (Server.handover) the store is left
// as it is instead: the client was told to take its place up on another
// server sharing the store (DialSide, then claim again), and one that never
// does is left to expiry and the store's abandonment rules, as after a
// crash.
func (c *conn) cleanup() {
	defer c.recoverPanic("cleanup")
	c.stopPusher()
	c.nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	switch {
	case c.s.handover.Load():
		if c.mailbox != "" && !c.closedMB || len(c.allocated) > 0 {
			c.log.Info("mailbox side handed over to another server", "nameplate", c.logName)
		}
	case c.mailbox != "" && !c.closedMB:
		if err := c.s.store.Close(ctx, c.mailbox, c.side, ""); err != nil {
			c.log.Error("mailbox store close failed", "nameplate", c.logName, "err", err)
		}
		c.log.Info("mailbox side disconnected", "nameplate", c.logName)
	}
	for _, np := range c.allocated {
		if np == c.nameplate || c.s.handover.Load() {
			continue
		}
		if err := c.s.store.Release(ctx, np, c.side); err != nil {
			c.log.Error("mailbox store release failed", "nameplate", np, "err", err)
		}
	}
	c.leaveMailbox()
	for np := range c.held {
		c.dropNameplate(np)
	}
	c.settlePairings("")
	c.log.Debug("mailbox connection closed")
}

// armRead sets the read deadline for the next frame, unless the connection
// is closing.
func (c *conn) armRead(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.nc.SetReadDeadline(time.Now().Add(d))
	return true
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// readFailed handles a failed frame read: limits and timeouts are reported
// to the client, anything else (the client went away) just ends it.
func (c *conn) readFailed(err error, timeout time.Duration) {
	switch {
	case errors.Is(err, errFrameTooLarge):
		c.fail(&protoError{code: CodeTooLarge, msg: "frame exceeds 65536 bytes", fatal: true})
	case errors.Is(err, errEmptyFrame):
		c.fail(badRequest(nil, "empty frame"))
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Debug("mailbox connection timed out", "after", timeout)
		c.fail(&protoError{code: CodeTimeout, msg: "no request for " + timeout.String() + "; closing the connection", fatal: true})
	case errors.Is(err, io.EOF):
	default:
		c.log.Debug("mailbox connection read failed", "err", err)
	}
}

// fail reports a protocol error to the client and ends the connection.
func (c *conn) fail(e *protoError) {
	if e.code != CodeTimeout {
		c.log.Info("mailbox protocol error", "code", e.code, "msg", e.msg)
	}
	c.finish(&frame{Type: typeError, ID: e.id, Code: e.code, Message: e.msg})
	c.drain()
}

// finish sends last (if not nil) as the connection's final frame, half-closes
// the connection and gives the client lingerTimeout to read it and close its
// side. The reader notices and drains. Safe from any goroutine; only the
// first call has an effect.
func (c *conn) finish(last *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	if last != nil {
		_ = c.write(last)
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
}

// drain discards what the client still sends until it closes or the linger
// deadline set by finish passes. Reader goroutine only.
func (c *conn) drain() {
	_, _ = io.Copy(io.Discard, c.nc)
}

// reply writes a response; it reports whether the write worked.
func (c *conn) reply(f *frame) bool {
	if err := c.write(f); err != nil {
		c.log.Debug("mailbox write failed", "err", err)
		return false
	}
	return true
}

// replyErr answers a failed store operation: *Error values go to the client
// as they are, anything else is logged and reported as "internal".
func (c *conn) replyErr(id *uint64, op string, err error, attrs ...any) bool {
	var e *Error
	if errors.Is(err, ErrTooManyNameplates) {
		c.s.stats.countRateLimited(LimitNameplatesPerIP)
	}
	switch {
	case errors.Is(err, ErrStoreUnavailable):
		c.log.Warn("mailbox store unavailable", append([]any{"op", op, "err", err}, attrs...)...)
		e = ErrStoreUnavailable
	case !errors.As(err, &e):
		c.log.Error("mailbox store failed", append([]any{"op", op, "err", err}, attrs...)...)
		e = errInternal
	default:
		c.log.Info("mailbox request refused", append([]any{"op", op, "code", e.Code}, attrs...)...)
	}
	return c.reply(errorFrame(id, e))
}

func (c *conn) write(f *frame) error {
	b, err := encodeFrame(f)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.nc.Write(b)
	return err
}

// logKeep is how much of a nameplate logNameplate keeps.
const logKeep = 12

// logNameplate shortens a nameplate for logs: meet nameplates are long and
// derived from a secret the two sides share, so logs carry only a prefix
// (enough to correlate lines), never the whole name.
func logNameplate(np string) string {
	if len(np) <= logKeep {
		return np
	}
	return np[:logKeep] + "…"
}

func errorFrame(id *uint64, e *Error) *frame {
	return &frame{Type: typeError, ID: id, Code: e.Code, Message: e.Message}
}
