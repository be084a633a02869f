//go:build !linux

package transfer

// placeDirect reports false: without unnamed files a one-chunk file goes
// through the partial store like any other.
func placeDirect(f directFile) (bool, error) { return false, nil }
