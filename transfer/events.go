package transfer

import (
	"time"
)

// EventKind names an engine event. The names are the CLI's --json "event"
// values, a public contract: extend, never rename.
type EventKind string

// Event kinds.
const (
	// EventCode: the sender's share code is ready (Code).
	EventCode EventKind = "code"
	// EventOffer: the receiver sees what is offered (Files, Bytes, Names;
	// IsText for a text of Bytes bytes).
	EventOffer EventKind = "offer"
	// EventConnected: the peers are connected (Path, Peer).
	EventConnected EventKind = "connected"
	// EventPath: the path changed (Path, Peer, Reason).
	EventPath EventKind = "path"
	// EventResumed: verified data from an earlier run is reused (SkippedBytes).
	EventResumed EventKind = "resumed"
	// EventProgress: bytes moved so far (Bytes, Total, Rate, ETA, Current).
	EventProgress EventKind = "progress"
	// EventState: the transfer's state changed (State).
	EventState EventKind = "state"
	// EventDone: everything arrived and was verified (Bytes, Files, Elapsed, WireBytes).
	EventDone EventKind = "done"
	// EventError: the transfer failed (ErrKind, Message).
	EventError EventKind = "error"
	// EventSkipped: the sender left an entry out of what it offers (File,
	// Reason: a SkipReason).
	EventSkipped EventKind = "skipped"
	// EventText: the receiver got the text it accepted (Text, Bytes),
	// before EventDone.
	EventText EventKind = "text"
)

// State is a coarse phase of a transfer, for status lines.
type State string

// States.
const (
	StateHashing    State = "hashing"
	StateWaiting    State = "waiting"    // sender: waiting for the receiver to type the code
	StatePairing    State = "pairing"    // PAKE and candidate exchange
	StateConnecting State = "connecting" // finding a path
	StateOffered    State = "offered"    // receiver: deciding
	StateSending    State = "sending"
	StateReceiving  State = "receiving"
	StateVerifying  State = "verifying"
	// StateReconnecting: the connection was lost mid-transfer; the peers
	// are trying to reach each other again and will resume.
	StateReconnecting State = "reconnecting"
	StateDone         State = "done"
	StateFailed       State = "failed"
)

// PathLabel is how the CLI and GUI name a path ("lan", "direct-udp",
// "direct-tcp", "relay").
type PathLabel string

// Path labels.
const (
	PathLAN       PathLabel = "lan"
	PathDirectUDP PathLabel = "direct-udp"
	PathDirectTCP PathLabel = "direct-tcp"
	PathRelay     PathLabel = "relay"
)

// Event is one thing that happened during a transfer. Only the fields of
// its Kind are set.
type Event struct {
	Kind EventKind
	Time time.Time

	Code string // EventCode

	Files int      // EventOffer, EventDone
	Bytes int64    // EventOffer (total), EventProgress (done), EventDone
	Names []string // EventOffer: the first few top-level names, for display
	Dest  string   // EventOffer: where files will be saved
	// IsText: EventOffer, EventDone: a text of Bytes bytes, not files.
	IsText bool
	// Text is EventText's text exactly as sent: valid UTF-8 of at most
	// MaxTextBytes, but with any control characters still in it, so
	// whatever shows it on a terminal must neutralise them first.
	Text string

	Path   PathLabel // EventConnected, EventPath
	Peer   string    // EventConnected, EventPath: IP:PORT
	Reason string    // EventPath: migrated|upgraded|fallback|reconnected; EventSkipped: link|special|dangling|loop

	File string // EventSkipped: the on-disk path left out

	SkippedBytes int64 // EventResumed

	Total   int64         // EventProgress
	Rate    float64       // EventProgress: bytes per second, smoothed
	ETA     time.Duration // EventProgress: 0 when unknown
	Current string        // EventProgress: the file being moved

	State State // EventState

	Elapsed   time.Duration // EventDone
	WireBytes int64         // EventDone: payload bytes on the network this run

	ErrKind ErrorKind // EventError
	Message string    // EventError
}

// Sink receives events. The engine calls it from its own goroutines, never
// concurrently, and never blocks on it for long: a Sink must return quickly.
type Sink func(Event)
