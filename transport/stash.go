package transport

import (
	"sync"
	"sync/atomic"
)

// The stash: the last QUIC packets quic-go wrote while the active path was
// suspect, sent again once a path works. quic-go does not know the path
// died; it keeps retransmitting into the void, doubling its probe timeout
// each time, so after a 20 s outage its next probe is 10 s or more away
// and the transfer would stand still that long on a path that works
// again. Its newest probes, delivered once the path is back, draw an
// acknowledgement at once: that resets the probe timeout and has quic-go
// declare the packets before them lost and send them again. The receiver
// drops whatever it already had (QUIC numbers every packet), so a
// needless resend costs two packets.

// stashLen is how many of the newest packets are kept: quic-go sends one
// or two probe packets per probe timeout.
const stashLen = 2

type stash struct {
	on   atomic.Bool // set while the active path is suspect
	mu   sync.Mutex
	pkts [stashLen][]byte
	next int
}

// keep copies the last packet of b (one packet, or a GSO batch of
// segSize-byte segments) into the stash, if the path is suspect.
func (st *stash) keep(b []byte, segSize int) {
	if !st.on.Load() || len(b) == 0 {
		return
	}
	if segSize > 0 && len(b) > segSize {
		b = b[(len(b)-1)/segSize*segSize:]
	}
	st.mu.Lock()
	st.pkts[st.next] = append(st.pkts[st.next][:0], b...)
	st.next = (st.next + 1) % stashLen
	st.mu.Unlock()
}

// take stops stashing and returns the stashed packets, oldest first.
func (st *stash) take() [][]byte {
	if !st.on.Swap(false) {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	var out [][]byte
	for i := range stashLen {
		j := (st.next + i) % stashLen
		if len(st.pkts[j]) > 0 {
			out = append(out, st.pkts[j])
			st.pkts[j] = nil
		}
	}
	return out
}

// flushStashLocked sends the stashed packets on the active path, which
// just proved to work (a move, or an answered PING after a suspicion).
func (e *endpoint) flushStashLocked() {
	pkts := e.stash.take()
	p := e.path.Load()
	if p == nil || len(pkts) == 0 {
		return
	}
	e.log.Debug("resending quic-go's latest packets on the working path", "packets", len(pkts))
	for _, b := range pkts {
		if err := p.carrier.WriteTo(b, 0, p.remote); err != nil {
			e.counters.writeErrors.Add(1)
		}
	}
}
