package mailbox

// Mailbox protocol, version 1.
//
// Transport: TCP. Every frame in either direction is a 4-byte big-endian
// length N (1 <= N <= 65536) followed by N bytes holding one JSON object.
// Unknown object members are ignored (forward compatibility); unknown "type"
// values are not.
//
// Handshake. The client's first frame, within 10 s of connecting:
//
//	{"type":"hello","version":1,"side":"<16 lowercase hex chars, random>"}
//
// The server answers {"type":"welcome","version":1}, with
// "relay":"HOST:PORT" when the server was given its own public address
// (ferry rendezvous --advertise): several servers behind one name share
// nameplates and mailboxes, and a relayed pair must meet on one of them, so
// the sender names this server's relay in its offer and both sides use it.
// It also carries "stun_alt_port":N when the server answers STUN on a
// second port of the same address (see Server.ServeSTUNPair), for clients
// that check how their NAT behaves (ferry netcheck).
// For any other version it answers
//
//	{"type":"error","code":"unsupported_version",
//	 "message":"this server speaks mailbox protocol version 1; upgrade ferry"}
//
// and closes the connection.
//
// Requests. After the handshake the client sends requests; each carries a
// client-chosen "id" (an unsigned integer) and the server answers each with
// exactly one frame carrying the same id: the result below, or
//
//	{"type":"error","id":N,"code":"...","message":"..."}
//
//	allocate                                  -> {"type":"allocated","id":N,"nameplate":"7"}
//	claim    {"nameplate":"7"}                -> {"type":"claimed","id":N}
//	meet     {"nameplate":"meet-<43 chars>"}  -> {"type":"claimed","id":N}
//	add      {"phase":"pake","body":"<b64>"}  -> {"type":"added","id":N}
//	release                                   -> {"type":"released","id":N}
//	close    {"mood":"happy"}                 -> {"type":"closed","id":N}, then the server closes the connection
//	ping                                      -> {"type":"pong","id":N}
//
// allocate reserves the lowest free positive integer as a nameplate (a
// decimal string). The allocating connection is not a member: it must claim.
// A nameplate that no second side claimed expires 10 minutes after
// allocation.
//
// claim joins the nameplate's mailbox. At most two distinct sides may claim
// a nameplate (a third gets "crowded"); a connection claims at most one
// nameplate ("already_claimed"). A nameplate that was never allocated, has
// expired or was burned gives "no_such_nameplate".
//
// meet lets two sides that paired before (and share a secret) meet again
// without a new code: both derive the same long random name and meet under
// it. The nameplate must be "meet-" followed by exactly 43 characters of
// unpadded base64url encoding 32 bytes (canonically: the unused low bits of
// the last character are zero); anything else is a protocol error,
// "bad_request", and creates nothing. meet creates the nameplate if it does
// not exist, charged to the client's IP like an allocated one and expiring
// 10 minutes after creation unless a second side claims it, then claims it
// with claim's rules ("crowded", "already_claimed"; the same side meeting
// again, say from a new connection after a network change, gets the same
// mailbox). Meet nameplates never collide with allocated ones (decimal
// integers), allocate never hands them out, and claim of a meet nameplate
// is allowed. A burned, expired or freed meet nameplate is simply created
// afresh by the next meet.
//
// add appends a message to the claimed mailbox: phase is 1..32 characters of
// [a-z0-9_-], body is standard base64 of at most 4096 bytes, and a mailbox
// holds at most 32 messages ("mailbox_full"). Every message is pushed to
// every side of the mailbox, the sender included, as
//
//	{"type":"message","side":"<sender side>","phase":"pake","body":"<b64>"}
//
// and a side that claims later first receives all earlier messages in
// order. Pushed frames carry no id.
//
// release leaves the nameplate (the side's messages stay in the mailbox
// until it closes); once every side that claimed a nameplate has released
// or closed it, the nameplate is free for reallocation.
//
// close {"mood":"happy"|"lonely"|"scary"|"errory"} leaves the mailbox. The
// mood "scary" (the client detected a wrong code) burns the nameplate: it is
// removed at once so that nobody can claim it again, which limits an
// attacker to one guess per nameplate. When every side has closed or
// disconnected, the nameplate and mailbox are freed.
//
// Errors. Codes: bad_request, unsupported_version, no_such_nameplate,
// crowded, rate_limited, too_large, too_many_nameplates, already_claimed,
// not_claimed, mailbox_full, internal, and, in frames without an id that end
// the connection, timeout (no hello within 10 s, or no frame for 2 minutes),
// expired (the claimed nameplate expired before a second side claimed it),
// shutting_down and draining (the server is going away while others stay:
// connect again; a server sends it at any point, even in place of welcome).
// A frame that is too long, not a JSON object, of an
// unknown type or missing required fields is a protocol error: the server
// replies with an error frame (with the request's id when it could read it)
// and closes the connection. All other errors leave the connection open.
//
// Limits (server defaults, configurable): at most 64 allocated or met
// nameplates open per client IP ("too_many_nameplates"), 20 requests/s with a burst of
// 40 per connection ("rate_limited"; the request is not executed).

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// ProtocolVersion is the mailbox protocol version this package speaks.
	ProtocolVersion = 1
	// MaxFrameSize is the largest frame payload, in bytes, either side accepts.
	MaxFrameSize = 65536
	// DefaultMaxBody is the largest decoded message body, in bytes, of protocol version 1.
	DefaultMaxBody = 4096
	// DefaultMaxMessages is the number of messages a mailbox holds at most.
	DefaultMaxMessages = 32
	// maxPhase is the longest phase name.
	maxPhase = 32
	// maxNameplate is the longest nameplate string a request may carry.
	maxNameplate = 64
)

// MeetPrefix starts every meet nameplate; the rest is 43 characters of
// unpadded base64url encoding 32 bytes. Allocated nameplates are decimal
// integers, so the two never collide.
const MeetPrefix = "meet-"

// meetRandomLen is the number of bytes a meet nameplate encodes.
const meetRandomLen = 32

// ValidMeetNameplate reports whether s is MeetPrefix followed by the
// canonical unpadded base64url encoding of exactly 32 bytes.
func ValidMeetNameplate(s string) bool {
	rest, ok := strings.CutPrefix(s, MeetPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(meetRandomLen) {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil && len(b) == meetRandomLen
}

// errBadMeetNameplate refuses a meet of a name ValidMeetNameplate rejects.
var errBadMeetNameplate = &Error{Code: CodeBadRequest, Message: "a meet nameplate is \"" + MeetPrefix + "\" and 43 characters of base64url (32 bytes)"}

// Error codes carried in error frames and in *Error.Code.
const (
	CodeBadRequest         = "bad_request"
	CodeUnsupportedVersion = "unsupported_version"
	CodeNoSuchNameplate    = "no_such_nameplate"
	CodeCrowded            = "crowded"
	CodeRateLimited        = "rate_limited"
	CodeTooLarge           = "too_large"
	CodeTooManyNameplates  = "too_many_nameplates"
	CodeAlreadyClaimed     = "already_claimed"
	CodeNotClaimed         = "not_claimed"
	CodeMailboxFull        = "mailbox_full"
	CodeInternal           = "internal"
	CodeTimeout            = "timeout"
	CodeExpired            = "expired"
	CodeShuttingDown       = "shutting_down"
	CodeDraining           = "draining"
	CodeUnavailable        = "unavailable"
)

const unsupportedVersionMessage = "this server speaks mailbox protocol version 1; upgrade ferry"

// Frame types.
const (
	typeHello     = "hello"
	typeWelcome   = "welcome"
	typeError     = "error"
	typeAllocate  = "allocate"
	typeAllocated = "allocated"
	typeClaim     = "claim"
	typeClaimed   = "claimed"
	typeMeet      = "meet"
	typeAdd       = "add"
	typeAdded     = "added"
	typeMessage   = "message"
	typeRelease   = "release"
	typeReleased  = "released"
	typeClose     = "close"
	typeClosed    = "closed"
	typePing      = "ping"
	typePong      = "pong"
)

// frame is the JSON object of every frame, in both directions. Absent
// members are zero; pointers tell "absent" from "zero" where it matters.
type frame struct {
	Type      string  `json:"type"`
	ID        *uint64 `json:"id,omitempty"`
	Version   *int    `json:"version,omitempty"`
	Side      string  `json:"side,omitempty"`
	Nameplate string  `json:"nameplate,omitempty"`
	Phase     string  `json:"phase,omitempty"`
	Body      *string `json:"body,omitempty"`
	Mood      string  `json:"mood,omitempty"`
	Code      string  `json:"code,omitempty"`
	Message   string  `json:"message,omitempty"`
	Relay     string  `json:"relay,omitempty"`
	STUNAlt   int     `json:"stun_alt_port,omitempty"`
}

var (
	errFrameTooLarge = errors.New("mailbox: frame too large")
	errEmptyFrame    = errors.New("mailbox: empty frame")
)

// readFrame reads one frame's payload from r. It checks the announced length
// before allocating, so a hostile peer cannot make it allocate more than
// MaxFrameSize bytes.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	switch {
	case n == 0:
		return nil, errEmptyFrame
	case n > MaxFrameSize:
		return nil, errFrameTooLarge
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// encodeFrame returns f as a complete frame, header included.
func encodeFrame(f *frame) ([]byte, error) {
	js, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if len(js) > MaxFrameSize {
		return nil, errFrameTooLarge
	}
	out := make([]byte, 4, 4+len(js))
	binary.BigEndian.PutUint32(out, uint32(len(js)))
	return append(out, js...), nil
}

// decodeFrame parses a frame payload, which must be a single JSON object.
func decodeFrame(payload []byte) (*frame, error) {
	if len(payload) == 0 || firstNonSpace(payload) != '{' {
		return nil, errors.New("frame is not a JSON object")
	}
	var f frame
	if err := json.Unmarshal(payload, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// protoError is a request the server refuses: it answers with an error frame
// carrying code and msg (and id, when known). Protocol errors (fatal) also
// close the connection.
type protoError struct {
	id    *uint64
	code  string
	msg   string
	fatal bool
}

func (e *protoError) Error() string { return e.code + ": " + e.msg }

func badRequest(id *uint64, format string, args ...any) *protoError {
	return &protoError{id: id, code: CodeBadRequest, msg: "malformed request: " + fmt.Sprintf(format, args...), fatal: true}
}

// hello is a validated hello frame.
type hello struct {
	side string
}

// parseHello validates the first frame of a connection.
func parseHello(payload []byte) (*hello, *protoError) {
	f, err := decodeFrame(payload)
	if err != nil {
		return nil, badRequest(nil, "%v", err)
	}
	if f.Type != typeHello {
		return nil, badRequest(f.ID, "the first frame must be hello, not %q", f.Type)
	}
	if f.Version == nil {
		return nil, badRequest(nil, "hello without version")
	}
	if *f.Version != ProtocolVersion {
		return nil, &protoError{code: CodeUnsupportedVersion, msg: unsupportedVersionMessage, fatal: true}
	}
	if !validSide(f.Side) {
		return nil, badRequest(nil, "side must be 16 lowercase hex characters")
	}
	return &hello{side: f.Side}, nil
}

// request is a validated client request.
type request struct {
	typ       string
	id        uint64
	nameplate string // claim, meet
	phase     string // add
	body      []byte // add
	mood      Mood   // close
}

// parseRequest decodes and validates one request frame; maxBody bounds the
// decoded body of add.
func parseRequest(payload []byte, maxBody int) (*request, *protoError) {
	f, err := decodeFrame(payload)
	if err != nil {
		return nil, badRequest(nil, "%v", err)
	}
	if f.ID == nil {
		return nil, badRequest(nil, "request without id")
	}
	req := &request{typ: f.Type, id: *f.ID}
	switch f.Type {
	case typeAllocate, typeRelease, typePing:
	case typeClaim:
		if f.Nameplate == "" {
			return nil, badRequest(f.ID, "claim without nameplate")
		}
		if len(f.Nameplate) > maxNameplate {
			return nil, badRequest(f.ID, "nameplate longer than %d characters", maxNameplate)
		}
		req.nameplate = f.Nameplate
	case typeMeet:
		if !ValidMeetNameplate(f.Nameplate) {
			return nil, badRequest(f.ID, "meet nameplate must be %q and 43 characters of base64url (32 bytes)", MeetPrefix)
		}
		req.nameplate = f.Nameplate
	case typeAdd:
		if !validPhase(f.Phase) {
			return nil, badRequest(f.ID, "phase must be 1 to %d characters of [a-z0-9_-]", maxPhase)
		}
		if f.Body == nil {
			return nil, badRequest(f.ID, "add without body")
		}
		if len(*f.Body) > base64.StdEncoding.EncodedLen(maxBody) {
			return nil, &protoError{id: f.ID, code: CodeTooLarge, msg: fmt.Sprintf("message body exceeds %d bytes", maxBody), fatal: true}
		}
		body, err := base64.StdEncoding.DecodeString(*f.Body)
		if err != nil {
			return nil, badRequest(f.ID, "body is not standard base64")
		}
		if len(body) > maxBody {
			return nil, &protoError{id: f.ID, code: CodeTooLarge, msg: fmt.Sprintf("message body exceeds %d bytes", maxBody), fatal: true}
		}
		req.phase, req.body = f.Phase, body
	case typeClose:
		m := Mood(f.Mood)
		if !m.valid() {
			return nil, badRequest(f.ID, "mood must be happy, lonely, scary or errory")
		}
		req.mood = m
	case "":
		return nil, badRequest(f.ID, "frame without type")
	default:
		return nil, badRequest(f.ID, "unknown request type %q", f.Type)
	}
	return req, nil
}

// validPhase reports whether p is 1..32 characters of [a-z0-9_-].
func validPhase(p string) bool {
	if len(p) == 0 || len(p) > maxPhase {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validSide reports whether s is 16 lowercase hex characters.
func validSide(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// encodeBody returns body in the wire encoding.
func encodeBody(body []byte) *string {
	s := base64.StdEncoding.EncodeToString(body)
	return &s
}
