// Package vnet is an in-memory virtual UDP network for tests of ferry's
// transport. It never opens real sockets and is meant for tests only.
//
// A [Network] owns everything that exists on it: hosts listening directly on
// public ("internet") addresses, [NAT] boxes with hosts behind them on private
// addresses, per-link impairments ([Link]: loss, delay, jitter, reordering,
// black holes), packet taps, and the single scheduler goroutine that delivers
// delayed packets. Every [Conn] implements [net.PacketConn] and can be handed
// to quic-go as the packet connection of a quic.Transport.
//
// # Addressing and routing
//
// Addresses are normalised on entry: IPv4-mapped IPv6 addresses are unmapped
// and IPv6 zones are dropped. A packet on the internet is addressed to a
// public ip:port. If the IP is the public address of a NAT, the NAT translates
// the packet back to a private host if a mapping exists and its filter allows
// it; otherwise the packet goes to the host listening directly on that
// address. Packets sent by a host behind a NAT to a private address of a host
// behind the same NAT travel on that NAT's LAN without translation; every
// other packet of such a host is translated by the NAT and sent on the
// internet, where private addresses are unroutable.
//
// # Timing and order
//
// A packet that needs no delay is delivered synchronously: when WriteTo
// returns, the packet is in the receiver's queue or has been dropped. Delayed
// packets are delivered by one scheduler goroutine per Network (started on
// first use, stopped by [Network.Close]). Packets of one flow (wire source and
// destination address) are delivered in the order they were sent, even with
// jitter, unless the Reorder impairment picks them.
//
// A Network created inside a testing/synctest bubble runs on the bubble's
// fake clock: delays and NAT mapping timeouts then cost no real time, and
// blocked reads are durably blocked.
//
// # Determinism
//
// All random decisions (loss, jitter, reordering) draw from one generator
// seeded by [Options.Seed], in the order packets are sent. A test that sends
// from one goroutine therefore sees the same decisions on every run.
package vnet
