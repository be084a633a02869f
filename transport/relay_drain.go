package transport

import "context"

// Drain stops the relay gracefully, for a rendezvous server that is going
// away while others (behind its address, or sharing its Redis) stay:
//
//   - every hello from now on is refused with RelayBusy, which a client
//     retries (by then the rendezvous address should lead elsewhere);
//   - sessions still waiting for a partner are ended at once: the partner
//     can no longer reach this server, and a client that loses its session
//     joins again by itself (relay_rejoin.go), elsewhere;
//   - paired sessions go on until they end by themselves, or until ctx is
//     done, when Drain closes everything as Close does.
//
// It returns once no session is left, with the number of paired sessions
// when the drain started and the number it closed at ctx's end. Call it
// once; Close may be called during or after it.
func (s *RelayServer) Drain(ctx context.Context) (inProgress, cut int) {
	s.mu.Lock()
	s.draining = true
	s.drained = make(chan struct{})
	var waiting []*relaySession
	for _, sess := range s.sessions {
		if sess.sides[0] != nil && sess.sides[1] != nil {
			inProgress++
			continue
		}
		s.endLocked(sess)
		waiting = append(waiting, sess)
	}
	s.noteDrainedLocked()
	drained := s.drained
	s.mu.Unlock()
	for _, sess := range waiting {
		s.closeEnded(sess, "server draining")
	}
	s.log.Info("relay draining", "sessions_in_progress", inProgress, "waiting_ended", len(waiting))

	select {
	case <-drained:
		return inProgress, 0
	case <-ctx.Done():
	}
	s.mu.Lock()
	cut = len(s.sessions)
	s.mu.Unlock()
	s.Close()
	return inProgress, cut
}

// noteDrainedLocked closes drained when a drain has left no session. s.mu
// is held.
func (s *RelayServer) noteDrainedLocked() {
	if !s.draining || len(s.sessions) > 0 {
		return
	}
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
}
