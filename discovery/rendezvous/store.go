package rendezvous

import (
	"context"
	"errors"
	"time"

	"ferry/discovery/mailbox"
)

// Store operations, the op label of the store metrics.
const (
	opAllocate = "allocate"
	opClaim    = "claim"
	opMeet     = "meet"
	opRelease  = "release"
	opAdd      = "add"
	opWatch    = "watch"
	opClose    = "close"
	opExpire   = "expire"
)

var storeOps = []string{opAllocate, opClaim, opMeet, opRelease, opAdd, opWatch, opClose, opExpire}

// InstrumentStore returns s timed and counted: every call is observed in
// ferry_rendezvous_store_duration_seconds and its failures counted in
// ferry_rendezvous_store_errors_total. It works for any Store (MemStore,
// RedisStore); the caller keeps s to stop it.
func (m *Metrics) InstrumentStore(s mailbox.Store) mailbox.Store {
	return &instrumentedStore{s: s, m: m}
}

type instrumentedStore struct {
	s mailbox.Store
	m *Metrics
}

var _ mailbox.Store = (*instrumentedStore)(nil)

// observe records one call of op that started at start and ended with err.
// A *mailbox.Error is an answer for the client, not a store failure; a
// cancelled call (a Watch whose connection went away) is not one either.
func (st *instrumentedStore) observe(op string, start time.Time, err error) {
	st.m.storeTime.WithLabelValues(op).Observe(time.Since(start).Seconds())
	var e *mailbox.Error
	if err != nil && !errors.As(err, &e) && !errors.Is(err, context.Canceled) {
		st.m.storeErrs.WithLabelValues(op).Inc()
	}
}

// timed runs f, one call of op, and observes it.
func timed[T any](st *instrumentedStore, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	st.observe(op, start, err)
	return v, err
}

// timedErr is timed for a call that returns only an error.
func timedErr(st *instrumentedStore, op string, f func() error) error {
	_, err := timed(st, op, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

func (st *instrumentedStore) Allocate(ctx context.Context, req mailbox.AllocateRequest) (string, error) {
	return timed(st, opAllocate, func() (string, error) { return st.s.Allocate(ctx, req) })
}

func (st *instrumentedStore) Claim(ctx context.Context, nameplate, side string) (string, error) {
	return timed(st, opClaim, func() (string, error) { return st.s.Claim(ctx, nameplate, side) })
}

func (st *instrumentedStore) Meet(ctx context.Context, req mailbox.MeetRequest) (string, error) {
	return timed(st, opMeet, func() (string, error) { return st.s.Meet(ctx, req) })
}

func (st *instrumentedStore) Release(ctx context.Context, nameplate, side string) error {
	return timedErr(st, opRelease, func() error { return st.s.Release(ctx, nameplate, side) })
}

func (st *instrumentedStore) Add(ctx context.Context, mb string, msg mailbox.Message, maxMessages int) error {
	return timedErr(st, opAdd, func() error { return st.s.Add(ctx, mb, msg, maxMessages) })
}

func (st *instrumentedStore) Watch(ctx context.Context, mb string, from int) ([]mailbox.Message, <-chan struct{}, error) {
	start := time.Now()
	msgs, changed, err := st.s.Watch(ctx, mb, from)
	st.observe(opWatch, start, err)
	return msgs, changed, err
}

func (st *instrumentedStore) Close(ctx context.Context, mb, side string, mood mailbox.Mood) error {
	return timedErr(st, opClose, func() error { return st.s.Close(ctx, mb, side, mood) })
}

func (st *instrumentedStore) Expire(ctx context.Context, now time.Time) ([]string, error) {
	return timed(st, opExpire, func() ([]string, error) { return st.s.Expire(ctx, now) })
}
