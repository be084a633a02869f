package portmap

import (
	"errors"
	"fmt"
)

// Protocol names a port mapping protocol. The strings are a public
// contract: `ferry netcheck --json` reports them in its portmap field.
type Protocol string

const (
	// PCP is the Port Control Protocol, RFC 6887 (NAT-PMP's successor,
	// on the same port).
	PCP Protocol = "pcp"
	// NATPMP is NAT Port Mapping Protocol, RFC 6886.
	NATPMP Protocol = "nat-pmp"
	// UPnP is UPnP IGD's WANIPConnection (or WANPPPConnection) service.
	UPnP Protocol = "upnp"
	// None means no protocol answered, or there is no gateway to ask.
	None Protocol = "none"
)

// preference lists the protocols from the most to the least preferred:
// PCP and NAT-PMP are one UDP round trip each and report exactly what the
// router did; UPnP needs a multicast search and HTTP, and many IGDs accept
// only permanent leases.
var preference = []Protocol{PCP, NATPMP, UPnP}

// ResultError is a router's refusal: a non-zero result code in a PCP or
// NAT-PMP response.
type ResultError struct {
	Protocol Protocol
	Code     int
}

func (e *ResultError) Error() string {
	return fmt.Sprintf("portmap: %s result %d (%s)", e.Protocol, e.Code, resultName(e.Protocol, e.Code))
}

// errMalformed marks a response that cannot be parsed: too short, the
// wrong version or opcode, or fields that contradict the request.
var errMalformed = errors.New("portmap: malformed response")

func resultName(p Protocol, code int) string {
	var names []string
	switch p {
	case NATPMP:
		// RFC 6886 Section 3.5.
		names = []string{"success", "unsupported version", "not authorized", "network failure", "out of resources", "unsupported opcode"}
	case PCP:
		// RFC 6887 Section 7.4.
		names = []string{"success", "unsupported version", "not authorized", "malformed request", "unsupported opcode",
			"unsupported option", "malformed option", "network failure", "no resources", "unsupported protocol",
			"user exceeded quota", "cannot provide external", "address mismatch", "excessive remote peers"}
	}
	if code >= 0 && code < len(names) {
		return names[code]
	}
	return "unknown"
}
