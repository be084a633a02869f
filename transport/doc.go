// Package transport carries ferry's peer connections: QUIC streams over a
// "magic" UDP socket whose connections are named by connection ID, not by
// IP:port, so that either peer can change address mid-transfer.
//
// The package owns the process's real sockets (carriers), the router that maps
// incoming packets to peer endpoints (by QUIC connection-ID tag or by source
// address), ferry's authenticated control packets (PATH_CHALLENGE,
// PATH_RESPONSE, PING, PONG, PUNCH), path validation and migration, keepalives,
// and the pinned-certificate TLS configuration handed to quic-go.
//
// It must not know about files, share codes or rendezvous servers: keys,
// certificate fingerprints and candidate addresses are handed in by the
// caller (the transfer engine, fed by package discovery). See
// docs/ARCHITECTURE.md for the maps, the state machine and the packet formats.
package transport
