// Package internal holds test-only helpers, each in its own package: vnet,
// an in-memory UDP network with NATs; netlab, network namespaces for
// multicast and NAT tests; e2e, the end-to-end tests that run the real
// binary. Production code never imports them.
package internal
