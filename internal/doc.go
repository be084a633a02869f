// Package internal holds test-only helpers, each in its own package: vnet,
// an in-memory UDP network with NATs, and (later) the network-namespace NAT
// lab. Production code never imports them.
package internal
