package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"
)

// alpn names ferry's protocol in the TLS handshake.
const alpn = "ferry/1"

// Fingerprint is the SHA-256 of a certificate's DER encoding. Peers exchange
// fingerprints under the pairing key and pin them.
type Fingerprint [sha256.Size]byte

// String returns the fingerprint in hex.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Certificate is a peer's fresh self-signed TLS certificate.
type Certificate struct {
	cert tls.Certificate
	// Fingerprint identifies the certificate to the other peer.
	Fingerprint Fingerprint
}

// NewCertificate makes a fresh ECDSA P-256 self-signed certificate. Its
// validity dates matter to nobody: peers trust it by fingerprint only.
func NewCertificate() (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("transport: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("transport: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ferry peer"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"ferry"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("transport: create certificate: %w", err)
	}
	return &Certificate{
		cert:        tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		Fingerprint: sha256.Sum256(der),
	}, nil
}

// pinnedTLS returns the TLS configuration for one side of a peer connection:
// our certificate, the peer's pinned, mutual authentication, TLS 1.3 only.
// Chain verification is replaced (not skipped) by the pin check: the peer's
// leaf certificate must hash to pin.
func pinnedTLS(own *Certificate, pin Fingerprint, role Role) *tls.Config {
	verify := func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return fmt.Errorf("%w: none presented", ErrPeerCertificate)
		}
		got := sha256.Sum256(rawCerts[0])
		if subtle.ConstantTimeCompare(got[:], pin[:]) != 1 {
			return ErrPeerCertificate
		}
		return nil
	}
	conf := &tls.Config{
		Certificates:          []tls.Certificate{own.cert},
		MinVersion:            tls.VersionTLS13,
		NextProtos:            []string{alpn},
		VerifyPeerCertificate: verify,
		// The peer presents a self-signed certificate that no CA vouches
		// for; VerifyPeerCertificate above checks the pin instead.
		InsecureSkipVerify: true,
		ServerName:         "ferry",
	}
	if role == RoleAcceptor {
		conf.ClientAuth = tls.RequireAnyClientCert
	}
	return conf
}
