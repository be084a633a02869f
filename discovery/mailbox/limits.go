package mailbox

import (
	"net"
	"time"
)

// Default limits; see ServerConfig.
const (
	DefaultNameplateTTL       = 10 * time.Minute
	DefaultIdleTimeout        = 2 * time.Minute
	DefaultHelloTimeout       = 10 * time.Second
	DefaultMaxNameplatesPerIP = 64
	DefaultRequestRate        = 20
	DefaultRequestBurst       = 40
)

// Timeouts that are not configurable.
const (
	// writeTimeout bounds every frame write, so a client that stops reading
	// cannot pin a server goroutine.
	writeTimeout = 10 * time.Second
	// lingerTimeout bounds how long the server waits for a client to close
	// its side after the server's last frame, before it drops the
	// connection.
	lingerTimeout = 2 * time.Second
	// shutdownGrace is how long Serve and ListenAndServe give connected
	// clients to go when they stop.
	shutdownGrace = 5 * time.Second
)

// tokenBucket limits one connection's request rate. It is used by a single
// goroutine and needs no lock. A nil *tokenBucket allows everything.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int, now time.Time) *tokenBucket {
	if rate <= 0 {
		return nil
	}
	b := float64(max(burst, 1))
	return &tokenBucket{rate: rate, burst: b, tokens: b, last: now}
}

// allow takes a token if one is available at now.
func (b *tokenBucket) allow(now time.Time) bool {
	if b == nil {
		return true
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clientIP returns the IP address part of addr, which is what per-IP limits
// count.
func clientIP(addr net.Addr) string {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	s := addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}
