package transfer

import "bytes"

// isZero reports whether b holds only zero bytes: b[0] is zero and every
// byte equals the one before it (one overlapping memcmp, no allocation).
func isZero(b []byte) bool {
	return len(b) == 0 || (b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1]))
}
