//go:build !linux

package transport

// Network-change notification exists only on Linux so far (rtnetlink, see
// netwatch_linux.go); elsewhere the poller alone notices moves, comparing
// interface addresses.

import "errors"

// errNetWatchUnsupported: this system gives no network-change
// notifications, so callers rely on polling.
var errNetWatchUnsupported = errors.New("transport: network change notifications unsupported")

// watchNetwork returns errNetWatchUnsupported: there is no notification
// source on this system. done is not used.
func watchNetwork(done <-chan struct{}) (<-chan struct{}, error) {
	return nil, errNetWatchUnsupported
}

// networkFingerprint describes the machine's network attachment by its
// up, non-loopback interfaces' addresses ("ifname addr/prefix", sorted).
// Default routes are not read on this system, so a move that only switches
// the default route between two uplinks that are both up goes unnoticed.
func networkFingerprint() []string {
	return interfaceAddrs()
}
