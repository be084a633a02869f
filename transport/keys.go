package transport

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// MinKeyLen is the shortest shared key accepted for a peer (256 bits).
const MinKeyLen = 32

// Key schedule. The pairing's shared key K never authenticates anything
// that could be replayed into a later attempt except HELLO, which is
// answered and never believed:
//
//	pairing session ID = HKDF(K, "ferry/transport/v2 pairing session id")
//	hello key (d->a)   = HKDF(K, "ferry/transport/v2 hello dialer to acceptor")
//	hello key (a->d)   = HKDF(K, "ferry/transport/v2 hello acceptor to dialer")
//	relay token        = HKDF(K, "ferry/transport/v2 relay token")
//	TCP punch proofs   = HKDF(K, "ferry/transport/v2 tcp punch dialer to acceptor"), and back
//
// Each connection attempt has fresh keys from both sides' nonces:
//
//	salt               = dialer nonce || acceptor nonce
//	attempt session ID = HKDF(K, salt, "ferry/transport/v2 attempt session id")
//	key (d->a)         = HKDF(K, salt, "ferry/transport/v2 dialer to acceptor")
//	key (a->d)         = HKDF(K, salt, "ferry/transport/v2 acceptor to dialer")
//	candidates (d->a)  = HKDF(K, salt, "ferry/transport/v2 candidates dialer to acceptor"), and back
//
// Keys are per direction, so a packet reflected back at its sender fails
// authentication.
const (
	labelPairingSession = "ferry/transport/v2 pairing session id"
	labelHelloD2A       = "ferry/transport/v2 hello dialer to acceptor"
	labelHelloA2D       = "ferry/transport/v2 hello acceptor to dialer"
	labelAttemptSession = "ferry/transport/v2 attempt session id"
	labelAttemptD2A     = "ferry/transport/v2 dialer to acceptor"
	labelAttemptA2D     = "ferry/transport/v2 acceptor to dialer"
	labelCandidatesD2A  = "ferry/transport/v2 candidates dialer to acceptor"
	labelCandidatesA2D  = "ferry/transport/v2 candidates acceptor to dialer"
	labelRelayToken     = "ferry/transport/v2 relay token"
	labelTCPProofD2A    = "ferry/transport/v2 tcp punch dialer to acceptor"
	labelTCPProofA2D    = "ferry/transport/v2 tcp punch acceptor to dialer"
)

// directionKeys authenticate one side's sending and receiving.
type directionKeys struct {
	send, recv *ControlKey
}

// pairingKeys are what both peers derive from the pairing's shared key alone.
type pairingKeys struct {
	root    []byte    // the shared key, for attempt keys
	session SessionID // names the endpoint in connecting packets
	hello   directionKeys
	relay   [RelayTokenLen]byte // matches the two sides at a relay
	// tcpSend and tcpRecv are what each side of a punched TCP connection
	// shows the other first (tcp_path.go).
	tcpSend, tcpRecv [32]byte
}

// attemptKeys are one connection attempt's keys, fresh with its nonces.
type attemptKeys struct {
	session SessionID
	directionKeys
	// sealSend and sealRecv encrypt CANDIDATES payloads
	// (control_candidates.go), per direction.
	sealSend, sealRecv [32]byte
}

func hkdfKey(secret, salt []byte, label string, n int) []byte {
	k, err := hkdf.Key(sha256.New, secret, salt, label, n)
	if err != nil {
		// Only a length beyond 255 hash blocks fails; ours are constant and short.
		panic(fmt.Sprintf("transport: hkdf %q: %v", label, err))
	}
	return k
}

func controlKey(secret, salt []byte, label string) *ControlKey {
	k := &ControlKey{}
	copy(k.key[:], hkdfKey(secret, salt, label, len(k.key)))
	return k
}

// directional orders a d->a and an a->d key into send and receive for role.
func directional(role Role, d2a, a2d *ControlKey) directionKeys {
	if role == RoleDialer {
		return directionKeys{send: d2a, recv: a2d}
	}
	return directionKeys{send: a2d, recv: d2a}
}

func derivePairingKeys(shared []byte, role Role) (pairingKeys, error) {
	if len(shared) < MinKeyLen {
		return pairingKeys{}, fmt.Errorf("transport: shared key is %d bytes, need at least %d", len(shared), MinKeyLen)
	}
	k := pairingKeys{root: append([]byte(nil), shared...)}
	copy(k.session[:], hkdfKey(shared, nil, labelPairingSession, len(k.session)))
	k.hello = directional(role, controlKey(shared, nil, labelHelloD2A), controlKey(shared, nil, labelHelloA2D))
	copy(k.relay[:], hkdfKey(shared, nil, labelRelayToken, RelayTokenLen))
	d2a, a2d := hkdfKey(shared, nil, labelTCPProofD2A, 32), hkdfKey(shared, nil, labelTCPProofA2D, 32)
	if role == RoleAcceptor {
		d2a, a2d = a2d, d2a
	}
	copy(k.tcpSend[:], d2a)
	copy(k.tcpRecv[:], a2d)
	return k, nil
}

// attempt derives the keys of the attempt in which this side (role) chose
// own and the peer chose peer.
func (k *pairingKeys) attempt(role Role, own, peer Nonce) attemptKeys {
	d, a := own, peer
	if role == RoleAcceptor {
		d, a = peer, own
	}
	salt := make([]byte, 0, 2*len(Nonce{}))
	salt = append(append(salt, d[:]...), a[:]...)
	var ak attemptKeys
	copy(ak.session[:], hkdfKey(k.root, salt, labelAttemptSession, len(ak.session)))
	ak.directionKeys = directional(role, controlKey(k.root, salt, labelAttemptD2A), controlKey(k.root, salt, labelAttemptA2D))
	d2a, a2d := hkdfKey(k.root, salt, labelCandidatesD2A, 32), hkdfKey(k.root, salt, labelCandidatesA2D, 32)
	if role == RoleAcceptor {
		d2a, a2d = a2d, d2a
	}
	copy(ak.sealSend[:], d2a)
	copy(ak.sealRecv[:], a2d)
	return ak
}
