package mailbox

import "errors"

// Error is an error reported by the mailbox server (or by a Store). Code is
// one of the Code* constants (servers may add codes); Message is meant for
// people.
type Error struct {
	Code    string
	Message string
}

// Error returns "mailbox: <message> (<code>)".
func (e *Error) Error() string {
	if e.Message == "" {
		return "mailbox: " + e.Code
	}
	return "mailbox: " + e.Message + " (" + e.Code + ")"
}

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, ErrCrowded) works for errors decoded from the wire.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrClosed is returned by Client methods once the connection to the server
// is gone. When the server said why before closing (for example
// "shutting_down" or "expired"), the returned error also matches that *Error
// through errors.As and errors.Is.
var ErrClosed = errors.New("mailbox: connection closed")

// Errors returned by Store implementations and, decoded from the wire, by
// Client methods. Compare with errors.Is: matching is by Code.
var (
	ErrNoSuchNameplate    = &Error{Code: CodeNoSuchNameplate, Message: "no transfer is waiting under this code; check the code or ask the sender for a new one"}
	ErrCrowded            = &Error{Code: CodeCrowded, Message: "two people are already using this code"}
	ErrTooManyNameplates  = &Error{Code: CodeTooManyNameplates, Message: "too many open codes from your address; finish or cancel some transfers first"}
	ErrMailboxFull        = &Error{Code: CodeMailboxFull, Message: "the mailbox for this code holds too many messages"}
	ErrNotClaimed         = &Error{Code: CodeNotClaimed, Message: "claim a nameplate first"}
	ErrAlreadyClaimed     = &Error{Code: CodeAlreadyClaimed, Message: "this connection already claimed a nameplate"}
	ErrExpired            = &Error{Code: CodeExpired, Message: "this code expired before anyone used it; start a new transfer"}
	ErrUnsupportedVersion = &Error{Code: CodeUnsupportedVersion, Message: unsupportedVersionMessage}
	ErrShuttingDown       = &Error{Code: CodeShuttingDown, Message: "the rendezvous server is shutting down; try again in a moment"}
	ErrRateLimited        = &Error{Code: CodeRateLimited, Message: "too many requests; slow down"}

	// ErrServerDraining ends the connections of a server that is going
	// away while others take over (`ferry rendezvous` on SIGTERM): connect
	// again, and the rendezvous address leads to another server. Its
	// message says so, for clients that predate the code.
	ErrServerDraining = &Error{Code: CodeDraining, Message: "the rendezvous server is restarting; connect again to continue"}

	// ErrStoreUnavailable is a shared store (Redis) that does not answer:
	// stores wrap their connection failures with it, and the server
	// refuses the request with it rather than as an internal error. The
	// same request will likely succeed once the store is back.
	ErrStoreUnavailable = &Error{Code: CodeUnavailable, Message: "the rendezvous server cannot reach its store right now; try again in a moment"}
)

// Retryable reports whether err says the server went away on purpose or
// cannot reach its store, and the same request will likely succeed again
// soon (codes "draining", "shutting_down" and "unavailable"). A client
// that pairs with a shared store behind the rendezvous address dials
// again and goes on.
func Retryable(err error) bool {
	return errors.Is(err, ErrServerDraining) || errors.Is(err, ErrShuttingDown) || errors.Is(err, ErrStoreUnavailable)
}

// closedError is the terminal error of a Client whose server said why it
// closed the connection: it is the server's *Error and also ErrClosed.
type closedError struct{ cause *Error }

func (e *closedError) Error() string   { return e.cause.Error() }
func (e *closedError) Unwrap() []error { return []error{e.cause, ErrClosed} }
