// Package mailbox is ferry's rendezvous mailbox: a small TCP server, and its
// Go client, through which two peers who share a short code such as
// "7-guitar-orbit" exchange a handful of small messages (PAKE messages, then
// encrypted address and fingerprint offers).
//
// The package owns the mailbox wire protocol (see protocol.go), the server
// (Server, ListenAndServe; also embedded in-process by a sender for LAN
// pairing), the STUN Binding responder that shares the server's port
// (ServeSTUN), the nameplate/mailbox state (Store, MemStore) and the client
// (Client). Only the nameplate ("7") ever reaches the server; the words, the
// keys derived from them and file data never do.
//
// It must not touch anything else: it does not parse or generate codes, run
// the PAKE, encrypt message bodies, open transport connections or carry file
// data. Those belong to package discovery and package transport, which treat
// message bodies handed to and returned by this package as opaque bytes.
package mailbox
