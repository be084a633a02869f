package transport

import "errors"

// Errors callers may branch on.
var (
	// ErrClosed: the socket or connection was closed.
	ErrClosed = errors.New("transport: closed")
	// ErrValidationTimeout: no valid PATH_RESPONSE arrived in time.
	ErrValidationTimeout = errors.New("transport: path validation timed out")
	// ErrInactivePath: the peer answered the challenge but no longer sends
	// from that address, so the path was not moved there.
	ErrInactivePath = errors.New("transport: peer answered from a path it no longer uses")
	// ErrNotEstablished: the operation needs an established path.
	ErrNotEstablished = errors.New("transport: no path to the peer yet")
	// ErrNoPath: none of the peer's candidate addresses answered.
	ErrNoPath = errors.New("transport: no candidate address of the peer answered")
	// ErrPeerCertificate: the peer's certificate does not match the pinned fingerprint.
	ErrPeerCertificate = errors.New("transport: peer certificate does not match the pinned fingerprint")
)
