package mailbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"ferry/internal/redistest"
)

// newRedisClient returns a client for the redis-server at addr, set up as
// ParseRedisURL sets one up; it is closed when the test ends.
func newRedisClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	opt, err := ParseRedisURL("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newRedisStore returns a RedisStore on rdb under prefix, stopped when the
// test ends.
func newRedisStore(t testing.TB, rdb redis.UniversalClient, prefix string) *RedisStore {
	t.Helper()
	s, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: prefix, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func TestRedisStoreContract(t *testing.T) {
	rdb := newRedisClient(t, redistest.Start(t))
	// One Redis for every case; each has its own prefix.
	testStoreContract(t, func(t *testing.T) Store {
		return newRedisStore(t, rdb, "test:"+t.Name()+":")
	})
}

// scanKeys returns every key under prefix.
func scanKeys(t *testing.T, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := testCtx(t)
	var keys []string
	iter := rdb.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	must(t, iter.Err())
	slices.Sort(keys)
	return keys
}

// Three servers allocating at once share one sequence of nameplates: no
// number twice, none skipped; and once every nameplate is gone, released
// or expired by any of them, nothing is left in Redis.
func TestRedisStoreAllocationUnderContention(t *testing.T) {
	const instances, perInstance = 3, 200
	rdb := newRedisClient(t, redistest.Start(t))
	const prefix = "contention:"
	stores := make([]*RedisStore, instances)
	for i := range stores {
		stores[i] = newRedisStore(t, newRedisClient(t, rdb.Options().Addr), prefix)
	}
	ctx := testCtx(t)
	t0 := time.Now()
	var mu sync.Mutex
	owner := map[string]int{} // nameplate -> allocating instance
	var wg sync.WaitGroup
	errs := make(chan error, instances*perInstance)
	for i, s := range stores {
		for range perInstance {
			wg.Go(func() {
				np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", Expires: t0.Add(time.Minute)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if prev, dup := owner[np]; dup {
					errs <- fmt.Errorf("nameplate %s allocated by instances %d and %d", np, prev, i)
				}
				owner[np] = i
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for n := 1; n <= instances*perInstance; n++ {
		if _, ok := owner[strconv.Itoa(n)]; !ok {
			t.Fatalf("nameplate %d skipped; got %d nameplates", n, len(owner))
		}
	}

	// Release the odd ones, concurrently from their own instances.
	for np, i := range owner {
		if n, _ := strconv.Atoi(np); n%2 == 1 {
			wg.Go(func() {
				if err := stores[i].Release(ctx, np, "a"); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// The lowest free number comes first.
	np, err := stores[2].Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", Expires: t0.Add(time.Minute)})
	if err != nil || np != "1" {
		t.Fatalf("Allocate after the releases = %q, %v; want 1", np, err)
	}
	// Every instance expires at once; each nameplate expires exactly once.
	expired := make([][]string, instances)
	for i, s := range stores {
		wg.Go(func() {
			exp, err := s.Expire(ctx, t0.Add(time.Hour))
			if err != nil {
				t.Error(err)
			}
			expired[i] = exp
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, exp := range expired {
		for _, np := range exp {
			if seen[np] {
				t.Fatalf("nameplate %s expired twice", np)
			}
			seen[np] = true
		}
	}
	if len(seen) != instances*perInstance/2+1 {
		t.Fatalf("%d nameplates expired, want %d", len(seen), instances*perInstance/2+1)
	}
	if keys := scanKeys(t, rdb, prefix); len(keys) != 0 {
		t.Fatalf("left in Redis: %v", keys)
	}
}

// A message added through one server wakes a watcher on another.
func TestRedisStoreWatchAcrossInstances(t *testing.T) {
	addr := redistest.Start(t)
	s1 := newRedisStore(t, newRedisClient(t, addr), "x:")
	s2 := newRedisStore(t, newRedisClient(t, addr), "x:")
	ctx := testCtx(t)
	np, err := s1.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
	must(t, err)
	mb, err := s1.Claim(ctx, np, "a")
	must(t, err)
	if mb2, err := s2.Claim(ctx, np, "b"); err != nil || mb2 != mb {
		t.Fatalf("Claim on instance 2 = %q, %v; want %q", mb2, err, mb)
	}
	msgs, changed, err := s2.Watch(ctx, mb, 0)
	must(t, err)
	if len(msgs) != 0 {
		t.Fatalf("Watch = %v", msgs)
	}
	must(t, s1.Add(ctx, mb, Message{Side: "a", Phase: "pake", Body: []byte("hi")}, 0))
	waitChanged(t, changed)
	msgs, _, err = s2.Watch(ctx, mb, 0)
	must(t, err)
	if len(msgs) != 1 || msgs[0].Side != "a" || msgs[0].Phase != "pake" || string(msgs[0].Body) != "hi" {
		t.Fatalf("Watch after Add = %+v", msgs)
	}
	// Closing the mailbox on instance 1 wakes instance 2's watcher too.
	_, changed, err = s2.Watch(ctx, mb, 1)
	must(t, err)
	must(t, s1.Close(ctx, mb, "a", Happy))
	must(t, s1.Close(ctx, mb, "b", Happy))
	waitChanged(t, changed)
	if _, _, err := s2.Watch(ctx, mb, 0); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("Watch of the freed mailbox = %v", err)
	}
}

// Redis restarts (empty) while a watcher waits: the watcher is woken, and
// the store carries on by itself once Redis is back.
func TestRedisStoreSurvivesRedisRestart(t *testing.T) {
	srv := redistest.StartServer(t)
	s1 := newRedisStore(t, newRedisClient(t, srv.Addr()), "r:")
	s2 := newRedisStore(t, newRedisClient(t, srv.Addr()), "r:")
	ctx := testCtx(t)
	np, err := s1.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
	must(t, err)
	mb, err := s1.Claim(ctx, np, "a")
	must(t, err)
	_, changed, err := s2.Watch(ctx, mb, 0)
	must(t, err)

	srv.Restart()
	waitChanged(t, changed)
	// What the watcher reads now is an error: Redis lost the mailbox.
	if _, _, err := s2.Watch(ctx, mb, 0); err == nil {
		t.Fatal("Watch of a mailbox Redis lost succeeded")
	}

	// A new pairing works through both instances.
	np, err = s1.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
	if err != nil || np != "1" {
		t.Fatalf("Allocate after the restart = %q, %v; want 1", np, err)
	}
	mb, err = s1.Claim(ctx, np, "a")
	must(t, err)
	_, err = s2.Claim(ctx, np, "b")
	must(t, err)
	_, changed, err = s2.Watch(ctx, mb, 0)
	must(t, err)
	must(t, s1.Add(ctx, mb, Message{Side: "a", Phase: "pake"}, 0))
	waitChanged(t, changed)
	msgs, _, err := s2.Watch(ctx, mb, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Watch = %v, %v", msgs, err)
	}
}

// With Redis unreachable, calls fail with an error (not a client *Error)
// and return by their context's deadline.
func TestRedisStoreUnreachable(t *testing.T) {
	srv := redistest.StartServer(t)
	s := newRedisStore(t, newRedisClient(t, srv.Addr()), "u:")
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
	var e *Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("Allocate with Redis down = %v; want an internal error", err)
	}
	if _, _, err := s.Watch(ctx, "m", 0); err == nil {
		t.Fatal("Watch with Redis down succeeded")
	}
}

// Two servers on different ports share one Redis: a client of one pairs
// with a client of the other.
func TestRedisTwoServersPair(t *testing.T) {
	addr := redistest.Start(t)
	rdb := newRedisClient(t, addr)
	ts1 := startServer(t, ServerConfig{Store: newRedisStore(t, newRedisClient(t, addr), "srv:")})
	ts2 := startServer(t, ServerConfig{Store: newRedisStore(t, newRedisClient(t, addr), "srv:")})
	ctx := testCtx(t)

	a, b := checkPairing(t, ts1.addr, ts2.addr)
	must(t, a.Close(ctx, Happy))
	must(t, b.Close(ctx, Happy))
	waitFor(t, "everything freed", func() bool { return len(scanKeys(t, rdb, "srv:")) == 0 })
}

// A mailbox nobody touched for AbandonAfter (its server died without
// closing it) is removed by Expire, with its nameplate, owner count and
// number; it is not reported as an expired nameplate.
func TestRedisStoreRemovesAbandonedMailboxes(t *testing.T) {
	rdb := newRedisClient(t, redistest.Start(t))
	s, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: "ab:", Logger: quietLogger(), AbandonAfter: time.Minute})
	must(t, err)
	t.Cleanup(func() { s.Stop() })
	ctx := testCtx(t)
	np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a", MaxPerOwner: 1})
	must(t, err)
	mb, err := s.Claim(ctx, np, "a")
	must(t, err)
	_, err = s.Claim(ctx, np, "b")
	must(t, err)
	_, changed, err := s.Watch(ctx, mb, 0)
	must(t, err)
	if exp, err := s.Expire(ctx, time.Now().Add(30*time.Second)); err != nil || len(exp) != 0 {
		t.Fatalf("Expire before abandonment = %v, %v", exp, err)
	}
	if n, m := storeLens(t, s); n != 1 || m != 1 {
		t.Fatalf("before abandonment: %d, %d", n, m)
	}
	if exp, err := s.Expire(ctx, time.Now().Add(2*time.Minute)); err != nil || len(exp) != 0 {
		t.Fatalf("Expire after abandonment = %v, %v; want no expired nameplates", exp, err)
	}
	waitChanged(t, changed)
	if keys := scanKeys(t, rdb, "ab:"); len(keys) != 0 {
		t.Fatalf("left in Redis: %v", keys)
	}
	if np2, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "c", MaxPerOwner: 1}); err != nil || np2 != np {
		t.Fatalf("Allocate after abandonment = %q, %v; want %q", np2, err, np)
	}
}
