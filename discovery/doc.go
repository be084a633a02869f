// Package discovery pairs two peers: share codes, the PAKE that turns a code
// into keys, the rendezvous mailbox (client and server), STUN and LAN
// announcement. It hands package transport keys, certificate fingerprints and
// candidate addresses; it never carries file data.
package discovery
