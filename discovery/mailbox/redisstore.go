package mailbox

// RedisStore keeps nameplates and mailboxes in Redis so that several
// rendezvous servers sharing one Redis behave exactly as one server with a
// MemStore.
//
// Key layout (P is RedisStoreOptions.Prefix, "ferry:" by default):
//
//	P np:<name>    hash, one nameplate: num (its number, "0" for a meet
//	               nameplate), owner, alloc (the allocating side), nc (how
//	               many distinct sides claimed), mb (its mailbox id, once
//	               claimed), c:<side> ("1" while the side holds it, "0"
//	               once it released or closed)
//	P mb:<id>      hash, one mailbox: np (its nameplate's name while the
//	               nameplate lives), x ("1" once the nameplate expired),
//	               s:<side> (the side's claims not yet ended; 0 once closed)
//	P mb:<id>:m    list, the mailbox's messages (see encodeMessage)
//	P next         string, the highest nameplate number in use or free
//	P free         sorted set, freed numbers below next, scored by value
//	P owners       hash, owner -> open nameplates (MaxPerOwner)
//	P exp          sorted set, nameplate names by Expires (µs since the
//	               epoch) while fewer than two sides claimed
//	P idle         sorted set, mailbox ids by when they count as abandoned
//	P events       pub/sub channel: the id of each mailbox that changed
//
// Allocation pops the smallest number from P free, or else increments
// P next. Freeing the top number lowers P next instead (and with it any
// free numbers just below), so P free only ever holds holes below P next
// and, once every nameplate is freed, neither key exists: nothing under
// the prefix outlives its nameplates and mailboxes. A sorted set gives
// O(log n) allocation; scanning for the lowest absent nameplate would cost
// O(n) per allocation.
//
// Every change is one Lua script, so it is atomic across servers; scripts
// that change a mailbox publish its id on P events. The scripts build the
// keys they touch from the prefix (passed as ARGV[1]) rather than
// declaring them, which a single Redis primary (standalone or Sentinel)
// allows and Redis Cluster does not: RedisStore does not support Cluster.
//
// Notification: each RedisStore holds one subscription to P events, made
// on its first Watch, and fans the ids out to its watchers. Watch
// registers its channel before it reads, and the subscription wakes every
// watcher whenever it is established or lost, so a change is never missed:
// at worst a watcher re-reads for nothing. An idle subscription costs
// Redis nothing but a PING per HealthInterval.
//
// Expiry: Expire runs one script per batch that removes the due
// nameplates, marks their mailboxes expired and tells their watchers;
// servers calling it at once each get distinct nameplates. Mailbox keys
// also carry a Redis TTL, refreshed on each Claim and Add, so that the
// messages of a deployment whose servers all stopped do not stay forever
// (see AbandonAfter); its nameplates, counts and indexes stay until a
// server runs Expire again, which cleans them up consistently.
//
// Mailbox ids are random, not counted, so no counter outlives its
// mailboxes and an id issued before Redis lost its data cannot name a
// mailbox created after.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for RedisStoreOptions.
const (
	DefaultRedisPrefix         = "ferry:"
	DefaultRedisAbandonAfter   = 24 * time.Hour
	DefaultRedisHealthInterval = 30 * time.Second
)

// RedisStoreOptions configures a RedisStore. Zero values mean the defaults.
type RedisStoreOptions struct {
	// Prefix starts every key and the pub/sub channel, so that one Redis
	// can host several deployments (or tests); default "ferry:". Servers
	// that share nameplates must use the same prefix.
	Prefix string
	// Logger receives the subscription's troubles; default slog.Default().
	Logger *slog.Logger
	// AbandonAfter is how long a mailbox may go without a Claim or Add
	// before Expire removes it (with its nameplate) as abandoned: with
	// several servers a server may die without closing its sides, which
	// a MemStore's process takes along. It must be far longer than any
	// pairing; default 24 hours. Redis itself deletes a mailbox's keys
	// twice as long after its last Claim or Add, in case no server runs
	// Expire at all.
	AbandonAfter time.Duration
	// HealthInterval is how long the change subscription may stay silent
	// before it is checked with a PING (one per interval for the whole
	// store, however many watchers); default 30 s. A subscription that
	// does not answer is replaced and every watcher woken.
	HealthInterval time.Duration
}

// RedisStore is a Store in Redis, shared by any number of servers (see the
// key layout at the top of redisstore.go). It is safe for concurrent use.
// Stop ends its change subscription.
type RedisStore struct {
	rdb          redis.UniversalClient
	prefix       string
	events       string // the pub/sub channel
	log          *slog.Logger
	abandonAfter time.Duration
	health       time.Duration

	ctx    context.Context // ends with Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the subscription goroutine

	mu        sync.Mutex
	closed    bool
	listening bool                     // the subscription goroutine was started
	ps        *redis.PubSub            // the current subscription, if any
	live      bool                     // ps is subscribed: changes reach watchers
	liveCh    chan struct{}            // closed when live becomes true
	watchers  map[string]chan struct{} // mailbox id -> closed at its next change
}

var _ Store = (*RedisStore)(nil)

// errRedisStoreClosed is returned by a RedisStore's methods after Stop.
var errRedisStoreClosed = errors.New("mailbox: redis store closed")

// NewRedisStore returns a RedisStore on client, which it does not close.
// Scripts are not idempotent, so client should not retry commands
// (MaxRetries -1: a retry after a lost reply would apply a change twice),
// and should respect contexts (ContextTimeoutEnabled); ParseRedisURL sets
// both. NewRedisStore does not contact Redis: an unreachable Redis shows
// in the methods' errors.
func NewRedisStore(client redis.UniversalClient, opts RedisStoreOptions) (*RedisStore, error) {
	if client == nil {
		return nil, errors.New("mailbox: NewRedisStore: nil client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AbandonAfter <= 0 {
		opts.AbandonAfter = DefaultRedisAbandonAfter
	}
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = DefaultRedisHealthInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &RedisStore{
		rdb:          client,
		prefix:       opts.Prefix,
		events:       opts.Prefix + "events",
		log:          opts.Logger,
		abandonAfter: opts.AbandonAfter,
		health:       opts.HealthInterval,
		ctx:          ctx,
		cancel:       cancel,
		liveCh:       make(chan struct{}),
		watchers:     make(map[string]chan struct{}),
	}, nil
}

// ParseRedisURL parses a redis:// or rediss:// URL (see redis.ParseURL)
// into client options suited to a RedisStore: commands are not retried
// and contexts are respected. Its errors never contain the URL's password.
func ParseRedisURL(rawURL string) (*redis.Options, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		u, perr := url.Parse(rawURL)
		if perr != nil {
			return nil, errors.New("mailbox: redis URL: not a URL")
		}
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(strings.ReplaceAll(msg, rawURL, u.Redacted()), pw, "xxxxx")
		}
		return nil, fmt.Errorf("mailbox: redis URL: %s", msg)
	}
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	return opt, nil
}

// Stop stops the change subscription and wakes every watcher; later calls
// fail. It does not close the Redis client. It may be called more than
// once. (It is not named Close: that is Store's.)
func (s *RedisStore) Stop() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.ps
	s.mu.Unlock()
	s.cancel()
	if ps != nil {
		_ = ps.Close()
	}
	s.wg.Wait()
	s.setLive(false)
	return nil
}

// luaPrelude is shared by every script: key names and the steps several
// scripts take. ARGV[1] is always the prefix.
const luaPrelude = `
local P = ARGV[1]
local function npk(n) return P .. 'np:' .. n end
local function mbk(id) return P .. 'mb:' .. id end
local function msgk(id) return P .. 'mb:' .. id .. ':m' end

-- free_np removes nameplate n from the namespace: its owner's count drops,
-- its number (unless it is a meet nameplate) is free again, and its mailbox
-- lives on without it.
local function free_np(n)
  local k = npk(n)
  local f = redis.call('HMGET', k, 'num', 'owner', 'mb')
  if not f[1] then return end
  redis.call('DEL', k)
  redis.call('ZREM', P .. 'exp', n)
  if redis.call('HINCRBY', P .. 'owners', f[2], -1) <= 0 then
    redis.call('HDEL', P .. 'owners', f[2])
  end
  local num = tonumber(f[1])
  if num > 0 then
    local top = tonumber(redis.call('GET', P .. 'next') or '0')
    if num < top then
      redis.call('ZADD', P .. 'free', num, f[1])
    else
      top = num - 1
      while top > 0 and redis.call('ZSCORE', P .. 'free', top) do
        redis.call('ZREM', P .. 'free', top)
        top = top - 1
      end
      if top > 0 then
        redis.call('SET', P .. 'next', top)
      else
        redis.call('DEL', P .. 'next')
      end
    end
  end
  if f[3] then redis.call('HDEL', mbk(f[3]), 'np') end
end

-- unhold marks side as no longer holding nameplate n and frees n when
-- nobody does.
local function unhold(n, side)
  local k = npk(n)
  redis.call('HSET', k, 'c:' .. side, '0')
  local all = redis.call('HGETALL', k)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'c:' and all[i + 1] == '1' then return end
  end
  free_np(n)
end

-- touch records activity on mailbox id: deadline is when it counts as
-- abandoned, ttl (ms) when Redis drops its keys by itself.
local function touch(id, deadline, ttl)
  redis.call('ZADD', P .. 'idle', deadline, id)
  redis.call('PEXPIRE', mbk(id), ttl)
  redis.call('PEXPIRE', msgk(id), ttl)
end

-- gone deletes mailbox id and tells its watchers.
local function gone(id)
  redis.call('DEL', mbk(id), msgk(id))
  redis.call('ZREM', P .. 'idle', id)
  redis.call('PUBLISH', P .. 'events', id)
end

-- claim makes side a member of the existing nameplate n with Claim's
-- rules; newid names the mailbox if this claim creates it.
local function claim(n, side, newid, deadline, ttl)
  local k = npk(n)
  local f = redis.call('HMGET', k, 'num', 'mb', 'c:' .. side, 'nc')
  if not f[1] then return {'err', 'no_such_nameplate'} end
  local mb = f[2]
  if f[3] then
    redis.call('HSET', k, 'c:' .. side, '1')
    redis.call('HINCRBY', mbk(mb), 's:' .. side, 1)
    touch(mb, deadline, ttl)
    return {'ok', mb}
  end
  local nc = tonumber(f[4])
  if nc >= 2 then return {'err', 'crowded'} end
  if not mb then
    mb = newid
    redis.call('HSET', k, 'mb', mb)
    redis.call('HSET', mbk(mb), 'np', n)
  end
  nc = nc + 1
  redis.call('HSET', k, 'c:' .. side, '1', 'nc', nc)
  redis.call('HINCRBY', mbk(mb), 's:' .. side, 1)
  if nc == 2 then redis.call('ZREM', P .. 'exp', n) end
  touch(mb, deadline, ttl)
  return {'ok', mb}
end

-- over_limit reports whether owner holds max (> 0) nameplates already.
local function over_limit(owner, max)
  max = tonumber(max)
  return max > 0 and tonumber(redis.call('HGET', P .. 'owners', owner) or '0') >= max
end

-- create_np makes nameplate n, charged to owner, expiring at exp ('0':
-- never).
local function create_np(n, num, owner, alloc, exp)
  redis.call('HSET', npk(n), 'num', num, 'owner', owner, 'alloc', alloc, 'nc', 0)
  if exp ~= '0' then redis.call('ZADD', P .. 'exp', exp, n) end
  redis.call('HINCRBY', P .. 'owners', owner, 1)
end
`

// Scripts; each returns {'ok', ...} or {'err', code}. Numbers that may be
// large (times) travel as strings: Lua would print them in 14 digits.
var (
	// ARGV: prefix, owner, side, expires, max per owner.
	allocateScript = redis.NewScript(luaPrelude + `
if over_limit(ARGV[2], ARGV[5]) then return {'err', 'too_many_nameplates'} end
local num
local popped = redis.call('ZPOPMIN', P .. 'free')
if popped[1] then
  num = popped[1]
else
  num = tostring(redis.call('INCR', P .. 'next'))
end
create_np(num, num, ARGV[2], ARGV[3], ARGV[4])
return {'ok', num}
`)

	// ARGV: prefix, nameplate, side, new mailbox id, abandon deadline, ttl.
	claimScript = redis.NewScript(luaPrelude + `
return claim(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
`)

	// ARGV: as claimScript, then owner, expires, max per owner.
	meetScript = redis.NewScript(luaPrelude + `
if redis.call('EXISTS', npk(ARGV[2])) == 0 then
  if over_limit(ARGV[7], ARGV[9]) then return {'err', 'too_many_nameplates'} end
  create_np(ARGV[2], '0', ARGV[7], '', ARGV[8])
end
return claim(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
`)

	// ARGV: prefix, nameplate, side.
	releaseScript = redis.NewScript(luaPrelude + `
local n, side = ARGV[2], ARGV[3]
local f = redis.call('HMGET', npk(n), 'num', 'c:' .. side, 'nc', 'alloc')
if not f[1] then return {'ok'} end
if f[2] then
  unhold(n, side)
elseif tonumber(f[3]) == 0 and f[4] == side then
  free_np(n)
end
return {'ok'}
`)

	// ARGV: prefix, mailbox, side, max messages, message, abandon
	// deadline, ttl.
	addScript = redis.NewScript(luaPrelude + `
local id = ARGV[2]
local f = redis.call('HMGET', mbk(id), 's:' .. ARGV[3], 'x')
if not f[1] or tonumber(f[1]) <= 0 then return {'err', 'not_claimed'} end
if f[2] then return {'err', 'expired'} end
local max = tonumber(ARGV[4])
if max > 0 and redis.call('LLEN', msgk(id)) >= max then return {'err', 'mailbox_full'} end
redis.call('RPUSH', msgk(id), ARGV[5])
touch(id, ARGV[6], ARGV[7])
redis.call('PUBLISH', P .. 'events', id)
return {'ok'}
`)

	// ARGV: prefix, mailbox, from.
	watchScript = redis.NewScript(luaPrelude + `
local id = ARGV[2]
if redis.call('EXISTS', mbk(id)) == 0 then return {'err', 'not_claimed'} end
if redis.call('HEXISTS', mbk(id), 'x') == 1 then return {'err', 'expired'} end
return {'ok', redis.call('LRANGE', msgk(id), ARGV[3], -1)}
`)

	// ARGV: prefix, mailbox, side, mood.
	closeScript = redis.NewScript(luaPrelude + `
local id, side, mood = ARGV[2], ARGV[3], ARGV[4]
local mk = mbk(id)
local conns = redis.call('HGET', mk, 's:' .. side)
if not conns then return {'ok'} end
if mood == '' and tonumber(conns) > 1 then
  redis.call('HINCRBY', mk, 's:' .. side, -1)
  return {'ok'}
end
redis.call('HSET', mk, 's:' .. side, 0)
local n = redis.call('HGET', mk, 'np')
if n then
  if mood == 'scary' then
    free_np(n)
  elseif redis.call('HEXISTS', npk(n), 'c:' .. side) == 1 then
    unhold(n, side)
  end
end
local all = redis.call('HGETALL', mk)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 's:' and tonumber(all[i + 1]) > 0 then return {'ok'} end
end
n = redis.call('HGET', mk, 'np')
if n then free_np(n) end
gone(id)
return {'ok'}
`)

	// ARGV: prefix, now, batch size. Returns the expired nameplates and
	// how many abandoned mailboxes it removed.
	expireScript = redis.NewScript(luaPrelude + `
local names = redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, n in ipairs(names) do
  local mb = redis.call('HGET', npk(n), 'mb')
  if mb then
    redis.call('HSET', mbk(mb), 'x', '1')
    redis.call('PUBLISH', P .. 'events', mb)
  end
  free_np(n)
  redis.call('ZREM', P .. 'exp', n)
end
local ids = redis.call('ZRANGEBYSCORE', P .. 'idle', '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local n = redis.call('HGET', mbk(id), 'np')
  if n then free_np(n) end
  gone(id)
end
return {'ok', names, #ids}
`)
)

// expireBatch bounds the nameplates (and abandoned mailboxes) one expiry
// script handles, so that no script blocks Redis for long.
const expireBatch = 500

// subscribeWait bounds how long Watch waits for the change subscription to
// be (re)established before it reads anyway: a watcher registered while the
// subscription is down is woken once it is up, so waiting only spares
// watchers that wake-up.
const subscribeWait = 5 * time.Second

// storeErrors maps the scripts' error codes to the Store's errors.
var storeErrors = map[string]*Error{
	CodeNoSuchNameplate:   ErrNoSuchNameplate,
	CodeCrowded:           ErrCrowded,
	CodeTooManyNameplates: ErrTooManyNameplates,
	CodeMailboxFull:       ErrMailboxFull,
	CodeNotClaimed:        ErrNotClaimed,
	CodeExpired:           ErrExpired,
}

// run runs script with the prefix and args and returns what follows its
// 'ok', a Store error for its 'err', or a wrapped Redis error.
func (s *RedisStore) run(ctx context.Context, op string, script *redis.Script, args ...any) ([]any, error) {
	if s.isClosed() {
		return nil, errRedisStoreClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mailbox: redis %s: %w", op, err)
	}
	res, err := script.Run(ctx, s.rdb, nil, append([]any{s.prefix}, args...)...).Slice()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mailbox: redis %s: %w", op, err)
		}
		// The script either ran or not, all of it: what failed is
		// reaching Redis (or Redis itself), which comes back.
		return nil, fmt.Errorf("%w: redis %s: %w", ErrStoreUnavailable, op, err)
	}
	status, _ := res[0].(string)
	switch status {
	case "ok":
		return res[1:], nil
	case "err":
		code, _ := res[1].(string)
		if e := storeErrors[code]; e != nil {
			return nil, e
		}
		return nil, fmt.Errorf("mailbox: redis %s: script error %q", op, code)
	}
	return nil, fmt.Errorf("mailbox: redis %s: unexpected reply %v", op, res)
}

func (s *RedisStore) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// micros renders t for a script: µs since the epoch, "0" for the zero time
// (never).
func micros(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// activity returns a claim's or add's abandon deadline and key TTL (ms).
func (s *RedisStore) activity() (deadline, ttl string) {
	return micros(time.Now().Add(s.abandonAfter)), strconv.FormatInt((2 * s.abandonAfter).Milliseconds(), 10)
}

// Allocate implements Store.
func (s *RedisStore) Allocate(ctx context.Context, req AllocateRequest) (string, error) {
	res, err := s.run(ctx, "allocate", allocateScript, req.Owner, req.Side, micros(req.Expires), req.MaxPerOwner)
	if err != nil {
		return "", err
	}
	return replyString(res, 0)
}

// Claim implements Store.
func (s *RedisStore) Claim(ctx context.Context, nameplate, side string) (string, error) {
	deadline, ttl := s.activity()
	res, err := s.run(ctx, "claim", claimScript, nameplate, side, rand.Text(), deadline, ttl)
	if err != nil {
		return "", err
	}
	return replyString(res, 0)
}

// Meet implements Store.
func (s *RedisStore) Meet(ctx context.Context, req MeetRequest) (string, error) {
	if !ValidMeetNameplate(req.Nameplate) {
		return "", errBadMeetNameplate
	}
	deadline, ttl := s.activity()
	res, err := s.run(ctx, "meet", meetScript, req.Nameplate, req.Side, rand.Text(), deadline, ttl,
		req.Owner, micros(req.Expires), req.MaxPerOwner)
	if err != nil {
		return "", err
	}
	return replyString(res, 0)
}

// Release implements Store.
func (s *RedisStore) Release(ctx context.Context, nameplate, side string) error {
	_, err := s.run(ctx, "release", releaseScript, nameplate, side)
	return err
}

// Add implements Store.
func (s *RedisStore) Add(ctx context.Context, mailbox string, msg Message, maxMessages int) error {
	deadline, ttl := s.activity()
	_, err := s.run(ctx, "add", addScript, mailbox, msg.Side, maxMessages, encodeMessage(msg), deadline, ttl)
	return err
}

// Watch implements Store. The changed channel is registered before the
// messages are read, and the subscription wakes every watcher whenever it
// is (re)established, so no change between the read and the wake-up is
// missed.
func (s *RedisStore) Watch(ctx context.Context, mailbox string, from int) ([]Message, <-chan struct{}, error) {
	changed, err := s.watcher(ctx, mailbox)
	if err != nil {
		return nil, nil, err
	}
	res, err := s.run(ctx, "watch", watchScript, mailbox, max(from, 0))
	if err != nil {
		return nil, nil, err
	}
	raw, _ := res[0].([]any)
	msgs := make([]Message, 0, len(raw))
	for _, r := range raw {
		str, _ := r.(string)
		m, err := decodeMessage(str)
		if err != nil {
			return nil, nil, fmt.Errorf("mailbox: redis watch: %w", err)
		}
		msgs = append(msgs, m)
	}
	return msgs, changed, nil
}

// Close implements Store.
func (s *RedisStore) Close(ctx context.Context, mailbox, side string, mood Mood) error {
	_, err := s.run(ctx, "close", closeScript, mailbox, side, string(mood))
	return err
}

// Expire implements Store. Each nameplate is expired by exactly one of the
// servers calling it: the scripts remove what they expire atomically. It
// also removes mailboxes abandoned for RedisStoreOptions.AbandonAfter
// (with their nameplates, which it does not return: they did not expire).
func (s *RedisStore) Expire(ctx context.Context, now time.Time) ([]string, error) {
	var expired []string
	abandoned := int64(0)
	for {
		res, err := s.run(ctx, "expire", expireScript, micros(now), expireBatch)
		if err != nil {
			return expired, err
		}
		names, _ := res[0].([]any)
		for _, n := range names {
			str, _ := n.(string)
			expired = append(expired, str)
		}
		reaped, _ := res[1].(int64)
		abandoned += reaped
		if len(names) < expireBatch && reaped < expireBatch {
			break
		}
	}
	if abandoned > 0 {
		s.log.Warn("mailbox: removed abandoned mailboxes (a server stopped without closing them?)", "count", abandoned)
	}
	slices.Sort(expired)
	return expired, nil
}

// Count returns how many nameplates and mailboxes the store holds. It
// scans the prefix's keys: for tests and occasional monitoring.
func (s *RedisStore) Count(ctx context.Context) (nameplates, mailboxes int, err error) {
	iter := s.rdb.Scan(ctx, 0, globEscape(s.prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rest := strings.TrimPrefix(iter.Val(), s.prefix)
		switch {
		case strings.HasPrefix(rest, "np:"):
			nameplates++
		case strings.HasPrefix(rest, "mb:") && !strings.HasSuffix(rest, ":m"):
			mailboxes++
		}
	}
	if err := iter.Err(); err != nil {
		return 0, 0, fmt.Errorf("mailbox: redis count: %w", err)
	}
	return nameplates, mailboxes, nil
}

// globEscape escapes the glob characters of s for SCAN's MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func replyString(res []any, i int) (string, error) {
	if i < len(res) {
		if str, ok := res[i].(string); ok {
			return str, nil
		}
	}
	return "", fmt.Errorf("mailbox: redis: unexpected reply %v", res)
}

// encodeMessage packs a message into one list element: the side's and the
// phase's lengths as uvarints, each followed by its bytes, then the body.
func encodeMessage(m Message) string {
	b := make([]byte, 0, 2*binary.MaxVarintLen16+len(m.Side)+len(m.Phase)+len(m.Body))
	b = binary.AppendUvarint(b, uint64(len(m.Side)))
	b = append(b, m.Side...)
	b = binary.AppendUvarint(b, uint64(len(m.Phase)))
	b = append(b, m.Phase...)
	b = append(b, m.Body...)
	return string(b)
}

// decodeMessage unpacks what encodeMessage packed.
func decodeMessage(s string) (Message, error) {
	field := func() (string, bool) {
		n, k := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if k <= 0 || uint64(len(s)-k) < n {
			return "", false
		}
		f := s[k : k+int(n)]
		s = s[k+int(n):]
		return f, true
	}
	side, ok1 := field()
	phase, ok2 := field()
	if !ok1 || !ok2 {
		return Message{}, errors.New("malformed stored message")
	}
	m := Message{Side: side, Phase: phase}
	if s != "" {
		m.Body = []byte(s)
	}
	return m, nil
}

// watcher returns the channel closed at mailbox's next change, starting
// the change subscription if it is not running and waiting (a while) for it
// to be established.
func (s *RedisStore) watcher(ctx context.Context, mailbox string) (<-chan struct{}, error) {
	var timer *time.Timer
	waited := false
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errRedisStoreClosed
		}
		if !s.listening {
			s.listening = true
			s.wg.Add(1)
			go s.listen()
		}
		if s.live || waited {
			// Registered before the caller reads: no change is missed.
			ch := s.watchers[mailbox]
			if ch == nil {
				ch = make(chan struct{})
				s.watchers[mailbox] = ch
			}
			s.mu.Unlock()
			return ch, nil
		}
		liveCh := s.liveCh
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(subscribeWait)
			defer timer.Stop()
		}
		select {
		case <-liveCh:
		case <-timer.C:
			waited = true // register anyway: it is woken once the subscription is up
		case <-ctx.Done():
			return nil, fmt.Errorf("mailbox: redis watch: %w", ctx.Err())
		case <-s.ctx.Done():
			return nil, errRedisStoreClosed
		}
	}
}

// setLive records whether the subscription is up. Either way every
// watcher is woken: when it comes up, changes published before went
// unheard; when it goes down, changes will.
func (s *RedisStore) setLive(live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if live && !s.live {
		close(s.liveCh)
	} else if !live && s.live {
		s.liveCh = make(chan struct{})
	}
	s.live = live
	for _, ch := range s.watchers {
		close(ch)
	}
	clear(s.watchers)
}

// wake wakes mailbox's watchers.
func (s *RedisStore) wake(mailbox string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.watchers[mailbox]; ch != nil {
		close(ch)
		delete(s.watchers, mailbox)
	}
}

// listen runs the change subscription until Stop, replacing it (after a
// backoff) whenever it fails.
func (s *RedisStore) listen() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		ps := s.rdb.Subscribe(s.ctx) // no channel yet: does not connect
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = ps.Close()
			return
		}
		s.ps = ps
		s.mu.Unlock()

		established, err := s.receive(ps)
		_ = ps.Close()
		s.setLive(false)
		if s.ctx.Err() != nil {
			return
		}
		if established {
			backoff = 0
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
		s.log.Warn("mailbox: redis change subscription lost; watchers re-read", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// receive subscribes ps to the change channel and wakes watchers as
// changes arrive, until the subscription fails. It reports whether the
// subscription was established.
func (s *RedisStore) receive(ps *redis.PubSub) (established bool, err error) {
	if err := ps.Subscribe(s.ctx, s.events); err != nil {
		return false, err
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, s.health)
		if err != nil {
			if !isTimeout(err) || pinged {
				return established, err
			}
			// Silent for a while: make sure the connection still works.
			if err := ps.Ping(s.ctx); err != nil {
				return established, err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			// Changes published before this went unheard.
			established = true
			s.setLive(true)
		case *redis.Message:
			s.wake(m.Payload)
		}
	}
}

// isTimeout reports whether err is a read timeout.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
