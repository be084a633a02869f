package mailbox

import (
	"context"
	"time"
)

// Mood is how a side leaves a mailbox.
type Mood string

// Moods a side may close with.
const (
	// Happy: the transfer was set up.
	Happy Mood = "happy"
	// Lonely: the other side never showed up.
	Lonely Mood = "lonely"
	// Scary: the other side did not know the code (PAKE confirmation
	// failed). The server burns the nameplate.
	Scary Mood = "scary"
	// Errory: something else went wrong.
	Errory Mood = "errory"
)

func (m Mood) valid() bool {
	switch m {
	case Happy, Lonely, Scary, Errory:
		return true
	}
	return false
}

// Message is one mailbox message. Body is never modified after Add; stores
// and readers may share it.
type Message struct {
	Side  string // the sender's side
	Phase string
	Body  []byte
}

// AllocateRequest describes a nameplate allocation.
type AllocateRequest struct {
	// Owner is who is charged for the nameplate (the client's IP address);
	// an owner holds at most MaxPerOwner open nameplates.
	Owner string
	// Side is the allocating side. It is not made a member, but its Release
	// frees the nameplate while nobody has claimed it.
	Side string
	// Expires is when the nameplate expires unless a second side has
	// claimed it by then (see Store.Expire).
	Expires time.Time
	// MaxPerOwner bounds Owner's open nameplates; <= 0 means no bound.
	MaxPerOwner int
}

// MeetRequest describes a meet: a claim of a nameplate that both sides
// derived from a shared secret, created by whichever side comes first.
type MeetRequest struct {
	// Nameplate is the meet nameplate; it must satisfy ValidMeetNameplate
	// (other names are refused with an *Error of Code CodeBadRequest, so a
	// meet never touches an allocated nameplate).
	Nameplate string
	// Side is the meeting side; it becomes a member, as with Claim.
	Side string
	// Owner is who is charged for the nameplate if this meet creates it
	// (the client's IP address), exactly as for AllocateRequest.Owner.
	Owner string
	// Expires is when a nameplate this meet creates expires unless a
	// second side has claimed it by then. It is ignored when the
	// nameplate exists.
	Expires time.Time
	// MaxPerOwner bounds Owner's open nameplates (allocated and met) when
	// this meet creates one; <= 0 means no bound.
	MaxPerOwner int
}

// Store keeps nameplates and mailboxes. The in-memory implementation is
// MemStore; a later shared implementation lets several servers run side by
// side, so the interface knows nothing of connections: sides are the random
// identifiers clients announce, owners are opaque strings.
//
// A nameplate is the public, short name a pair of sides meets under; it maps
// to a mailbox, which has its own opaque identifier so that a nameplate can
// be burned or freed (and reallocated) while its old mailbox still lives.
//
// Errors that concern the client are *Error values (ErrNoSuchNameplate,
// ErrCrowded, ErrTooManyNameplates, ErrMailboxFull, ErrNotClaimed,
// ErrExpired); anything else is reported to the client as "internal".
// Implementations must be safe for concurrent use.
type Store interface {
	// Allocate reserves the lowest free positive integer as a nameplate and
	// returns it as a decimal string. Nobody is a member yet.
	Allocate(ctx context.Context, req AllocateRequest) (nameplate string, err error)

	// Claim makes side a member of the nameplate and returns its mailbox.
	// Claiming again with the same side returns the same mailbox, and
	// counts: a side that reconnected and claimed again before its old
	// connection was noticed gone must not lose its place when it is (see
	// Close). A third
	// distinct side gets ErrCrowded; an unknown, expired or burned
	// nameplate ErrNoSuchNameplate. When the second side claims, the
	// nameplate stops expiring.
	Claim(ctx context.Context, nameplate, side string) (mailbox string, err error)

	// Meet creates req.Nameplate if it does not exist (charged to
	// req.Owner: ErrTooManyNameplates past req.MaxPerOwner; expiring at
	// req.Expires like an allocated nameplate) and then claims it for
	// req.Side with Claim's rules. Meet nameplates are never handed out by
	// Allocate, and freeing one does not make a number available. An
	// invalid name gets an *Error of Code CodeBadRequest.
	Meet(ctx context.Context, req MeetRequest) (mailbox string, err error)

	// Release says side leaves the nameplate (it stays in the mailbox).
	// Once every side that claimed it has released or closed, the nameplate
	// is freed. The allocating side's Release frees a nameplate nobody has
	// claimed. Releasing an unknown nameplate is not an error.
	Release(ctx context.Context, nameplate, side string) error

	// Add appends msg (from msg.Side, which must be an open member) to the
	// mailbox, which holds at most maxMessages messages (ErrMailboxFull).
	Add(ctx context.Context, mailbox string, msg Message, maxMessages int) error

	// Watch subscribes to a mailbox: it returns the messages from index
	// from on, in order, and a channel that is closed at the next change
	// (a new message, expiry, or the mailbox being freed); call Watch again
	// with the new index then. The channel may also be closed when
	// nothing changed (a shared store does so when it may have missed a
	// change, as when its connection was lost), so callers re-read rather
	// than assume a change. It returns ErrExpired once the mailbox's
	// nameplate expired before a second side claimed it, and ErrNotClaimed
	// for an unknown (or freed) mailbox.
	Watch(ctx context.Context, mailbox string, from int) (msgs []Message, changed <-chan struct{}, err error)

	// Close says side leaves the mailbox with mood (the empty Mood means
	// the side disconnected without closing); it also releases the side's
	// nameplate. A disconnect ends one claim only: while the side has
	// claimed more often than it disconnected, it stays a member. Scary burns the nameplate: it is removed at once. When
	// every member has closed, the mailbox and nameplate are freed. Closing
	// an unknown mailbox is not an error.
	Close(ctx context.Context, mailbox, side string, mood Mood) error

	// Expire removes the nameplates whose Expires is not after now and
	// which no second side claimed, and returns them. Their mailboxes, if a
	// side claimed, report ErrExpired from Watch and Add until closed.
	Expire(ctx context.Context, now time.Time) (expired []string, err error)
}
