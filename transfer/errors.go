package transfer

import (
	"context"
	"errors"
	"fmt"
)

// ErrorKind classifies a failure for scripts (--json "kind") and the GUI.
// The values are a public contract: extend, never rename.
type ErrorKind string

// Error kinds.
const (
	KindCodeMismatch ErrorKind = "code_mismatch"
	KindDeclined     ErrorKind = "declined"
	KindPeerGone     ErrorKind = "peer_gone"
	KindDiskFull     ErrorKind = "disk_full"
	KindBadPath      ErrorKind = "bad_path"
	KindTimeout      ErrorKind = "timeout"
	KindBadCode      ErrorKind = "bad_code"     // the code the user typed does not parse
	KindNoSuchCode   ErrorKind = "no_such_code" // nobody is waiting under this code
	KindNotFound     ErrorKind = "not_found"    // a path to send does not exist
	KindTampered     ErrorKind = "tampered"     // pairing or data failed authentication
	KindNoPath       ErrorKind = "no_path"      // the peers could not reach each other
	KindCanceled     ErrorKind = "canceled"
	KindInternal     ErrorKind = "internal"
	// KindUnavailable: the rendezvous server went away or cannot reach its
	// store (restarting, draining, its Redis down): running the command
	// again will likely work, through another server behind the same name.
	KindUnavailable ErrorKind = "unavailable"
)

// Error is a classified transfer failure. Message says what happened and
// what to do.
type Error struct {
	Kind ErrorKind
	Err  error
	// Hint is advice for the user, appended to the message.
	Hint string
}

func (e *Error) Error() string {
	msg := e.Err.Error()
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error of kind k.
func Errorf(k ErrorKind, hint, format string, args ...any) *Error {
	return &Error{Kind: k, Err: fmt.Errorf(format, args...), Hint: hint}
}

// KindOf classifies any error: the kind of the first *Error in its chain,
// timeout or canceled for context errors, internal otherwise.
func KindOf(err error) ErrorKind {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	}
	return KindInternal
}
