package transport

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// MinKeyLen is the shortest shared key accepted for a peer (256 bits).
const MinKeyLen = 32

// peerKeys are the values both peers derive from their shared key: the
// session ID that names the endpoint in control packets and the key that
// authenticates those packets.
type peerKeys struct {
	session SessionID
	control *ControlKey
}

func derivePeerKeys(shared []byte) (peerKeys, error) {
	if len(shared) < MinKeyLen {
		return peerKeys{}, fmt.Errorf("transport: shared key is %d bytes, need at least %d", len(shared), MinKeyLen)
	}
	sid, err := hkdf.Key(sha256.New, shared, nil, "ferry/transport/v1 session id", len(SessionID{}))
	if err != nil {
		return peerKeys{}, fmt.Errorf("transport: derive session id: %w", err)
	}
	ck, err := hkdf.Key(sha256.New, shared, nil, "ferry/transport/v1 control mac", 32)
	if err != nil {
		return peerKeys{}, fmt.Errorf("transport: derive control key: %w", err)
	}
	var k peerKeys
	copy(k.session[:], sid)
	k.control = &ControlKey{}
	copy(k.control.key[:], ck)
	return k, nil
}
