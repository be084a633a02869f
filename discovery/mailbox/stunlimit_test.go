package mailbox

import (
	"net/netip"
	"testing"
	"time"
)

// TestSTUNLimiterBurstThenRate: a source gets stunBurst answers at once,
// then one per 1/stunRate seconds; another source is not affected.
func TestSTUNLimiterBurstThenRate(t *testing.T) {
	var l stunLimiter
	now := time.Unix(1_700_000_000, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range stunBurst {
		if !l.allow(a, now) {
			t.Fatalf("request %d of a fresh source refused", i)
		}
	}
	if l.allow(a, now) {
		t.Fatal("request past the burst answered")
	}
	if !l.allow(b, now) {
		t.Fatal("another source refused while the first is throttled")
	}
	now = now.Add(time.Second / stunRate)
	if !l.allow(a, now) || l.allow(a, now) {
		t.Fatal("refill is not one answer per 1/stunRate s")
	}
	// A long quiet refills the bucket to the burst, no further.
	now = now.Add(time.Hour)
	for i := range stunBurst {
		if !l.allow(a, now) {
			t.Fatalf("request %d after a quiet hour refused", i)
		}
	}
	if l.allow(a, now) {
		t.Fatal("the bucket refilled past the burst")
	}
}

// TestSTUNSourceKey: the bucket belongs to the IP (the /64 for IPv6),
// whatever the port and however it is written.
func TestSTUNSourceKey(t *testing.T) {
	same := [][2]string{
		{"192.0.2.1", "::ffff:192.0.2.1"},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
	}
	for _, p := range same {
		if stunSourceKey(netip.MustParseAddr(p[0])) != stunSourceKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s count as different sources", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"192.0.2.1", "192.0.2.2"},
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
	}
	for _, p := range differ {
		if stunSourceKey(netip.MustParseAddr(p[0])) == stunSourceKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s count as one source", p[0], p[1])
		}
	}
}

// TestSTUNLimiterBounded sprays ten times stunMaxSources forged sources
// while one flooder keeps sending: the table never holds more than
// stunMaxSources, and the flooder, recently seen, is never forgotten (so it
// never gets a fresh bucket).
func TestSTUNLimiterBounded(t *testing.T) {
	var l stunLimiter
	now := time.Unix(1_700_000_000, 0)
	flooder := netip.MustParseAddr("198.51.100.7")
	for range stunBurst {
		l.allow(flooder, now)
	}
	for i := range 10 * stunMaxSources {
		forged := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !l.allow(forged, now) {
			t.Fatalf("forged source %d refused its first request", i)
		}
		if l.allow(flooder, now) {
			t.Fatalf("after %d forged sources the flooder got a fresh bucket", i)
		}
		if n := l.len(); n > stunMaxSources {
			t.Fatalf("%d sources tracked, cap %d", n, stunMaxSources)
		}
	}
	if n, m := l.len(), l.lru.Len(); n != stunMaxSources || m != n {
		t.Fatalf("map %d, list %d: want both full at %d", n, m, stunMaxSources)
	}
	// Once full, a new source reuses the oldest entry: no allocation.
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		l.allow(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), now)
		i++
	}); a != 0 {
		t.Fatalf("%v allocations per new source with the table full", a)
	}
}

// BenchmarkSTUNLimiterSpray is the limiter's cost per packet under a flood
// of forged sources, with the table full (evicting on every packet).
func BenchmarkSTUNLimiterSpray(b *testing.B) {
	var l stunLimiter
	now := time.Unix(1_700_000_000, 0)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
		i++
	}
}
