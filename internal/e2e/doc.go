// Package e2e holds end-to-end tests and benchmarks that build the real
// ferry binary and run it as separate processes: a real `ferry rendezvous`,
// `ferry send` and `ferry receive` on loopback or inside network namespaces
// the tests create. It has no non-test code.
package e2e
