package mailbox

import (
	"testing"

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
