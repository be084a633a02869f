package mailbox

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"ferry/internal/redistest"
)

// BenchmarkStorePairing runs whole pairings against a store directly, from
// parallel goroutines: allocate, both sides claim, one adds a message, the
// other watches it, both close. The Redis store's runs also report Redis's
// memory per open mailbox (INFO memory's used_memory before and after
// opening storeMemMailboxes mailboxes, both sides claimed, one 128-byte
// message each).
func BenchmarkStorePairing(b *testing.B) {
	b.Run("mem", func(b *testing.B) {
		benchStorePairing(b, NewMemStore())
	})
	b.Run("redis", func(b *testing.B) {
		addr := redistest.Start(b)
		rdb := newRedisClient(b, addr)
		s := newRedisStore(b, rdb, "bench:")
		benchStorePairing(b, s)
		b.StopTimer()
		b.ReportMetric(redisBytesPerMailbox(b, rdb, s), "redis-B/mailbox")
	})
}

func benchStorePairing(b *testing.B, s Store) {
	ctx := context.Background()
	body := make([]byte, 128)
	var failed atomic.Pointer[error]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pairOnStore(ctx, s, body); err != nil {
				failed.CompareAndSwap(nil, &err)
				return
			}
		}
	})
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}

// pairOnStore runs one pairing; it leaves nothing behind.
func pairOnStore(ctx context.Context, s Store, body []byte) error {
	np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
	if err != nil {
		return err
	}
	mb, err := s.Claim(ctx, np, "a")
	if err != nil {
		return err
	}
	if _, err := s.Claim(ctx, np, "b"); err != nil {
		return err
	}
	if err := s.Add(ctx, mb, Message{Side: "a", Phase: "pake", Body: body}, 0); err != nil {
		return err
	}
	if _, _, err := s.Watch(ctx, mb, 0); err != nil {
		return err
	}
	if err := s.Close(ctx, mb, "a", Happy); err != nil {
		return err
	}
	return s.Close(ctx, mb, "b", Happy)
}

// storeMemMailboxes is how many mailboxes redisBytesPerMailbox opens.
const storeMemMailboxes = 10000

// redisBytesPerMailbox opens storeMemMailboxes mailboxes in s and returns
// how much Redis's used_memory grew per mailbox.
func redisBytesPerMailbox(b *testing.B, rdb *redis.Client, s Store) float64 {
	ctx := testCtx(b)
	before := redisUsedMemory(b, rdb)
	body := make([]byte, 128)
	for range storeMemMailboxes {
		np, err := s.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
		must(b, err)
		mb, err := s.Claim(ctx, np, "a")
		must(b, err)
		_, err = s.Claim(ctx, np, "b")
		must(b, err)
		must(b, s.Add(ctx, mb, Message{Side: "a", Phase: "pake", Body: body}, 0))
	}
	return float64(redisUsedMemory(b, rdb)-before) / storeMemMailboxes
}

func redisUsedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(testCtx(b), "memory").Result()
	must(b, err)
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			must(b, err)
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// BenchmarkRedisNotifyAcrossInstances measures how soon a message added
// through one server's RedisStore wakes a watcher on another server's
// (Redis pub/sub, one subscription per store): the time from Add's call
// until the watcher's channel closes, as p50 and p99 over b.N messages,
// one at a time.
func BenchmarkRedisNotifyAcrossInstances(b *testing.B) {
	addr := redistest.Start(b)
	s1 := newRedisStore(b, newRedisClient(b, addr), "notify:")
	s2 := newRedisStore(b, newRedisClient(b, addr), "notify:")
	ctx := context.Background()
	np, err := s1.Allocate(ctx, AllocateRequest{Owner: "ip", Side: "a"})
	if err != nil {
		b.Fatal(err)
	}
	mb, err := s1.Claim(ctx, np, "a")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s2.Claim(ctx, np, "b"); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		_, changed, err := s2.Watch(ctx, mb, i)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := s1.Add(ctx, mb, Message{Side: "a", Phase: "p"}, 0); err != nil {
			b.Fatal(err)
		}
		<-changed
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	b.ReportMetric(0, "ns/op")
}
