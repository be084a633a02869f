package transport

// replayWindowSize is how far behind the highest counter seen a packet may
// still be accepted (once): control packets are few and rarely reordered by
// more than a handful, and 64 fits one machine word.
const replayWindowSize = 64

// replayWindow accepts each packet counter of one direction at most once:
// counters above the highest seen move the window, counters inside it are
// checked against a bitmap, older ones are refused (RFC 6479's scheme,
// one word wide). The zero value accepts any first counter but 0, which
// no sender uses.
type replayWindow struct {
	highest uint64
	seen    uint64 // bit i: highest-i was accepted
}

// accept reports whether counter is new and records it.
func (w *replayWindow) accept(counter uint64) bool {
	switch {
	case counter == 0:
		return false
	case counter > w.highest:
		shift := counter - w.highest
		if shift >= replayWindowSize {
			w.seen = 0
		} else {
			w.seen <<= shift
		}
		w.seen |= 1
		w.highest = counter
		return true
	case w.highest-counter >= replayWindowSize:
		return false
	default:
		bit := uint64(1) << (w.highest - counter)
		if w.seen&bit != 0 {
			return false
		}
		w.seen |= bit
		return true
	}
}
