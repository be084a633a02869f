package transport

import "time"

// oldest returns the key of m whose value is the earliest by when, for the
// bounded tables that forget their oldest entry when full.
func oldest[K comparable, V any](m map[K]V, when func(V) time.Time) (key K) {
	var first time.Time
	for k, v := range m {
		if t := when(v); first.IsZero() || t.Before(first) {
			key, first = k, t
		}
	}
	return key
}
