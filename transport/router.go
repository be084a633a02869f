package transport

import (
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
)

// router holds the seed design's two maps and the session map, and decides
// which endpoint a received datagram belongs to:
//
//   - byTag (primary): router tag -> endpoint. Every QUIC connection ID this
//     Socket issues starts with its endpoint's tag, so a QUIC packet names
//     its endpoint whatever address it comes from.
//   - byAddr (secondary): real remote address -> tag, for the packets that
//     carry no tag of ours (the client's first Initial packets). It holds
//     only proven addresses: the active path's remote and, while
//     connecting, addresses that answered the endpoint's own challenge.
//   - bySession: session ID -> endpoint, for control packets: the pairing's
//     session ID for the endpoint's whole life, the attempt's once
//     established.
//
// The maps are copy-on-write snapshots behind one atomic pointer: lookups,
// made for every datagram, take no lock; changes (rare) take mu and go
// through update.
type router struct {
	mu     sync.Mutex
	routes atomic.Pointer[routes]
}

// routes is one immutable snapshot of the router's maps.
type routes struct {
	byTag     map[routerTag]*endpoint
	byAddr    map[netip.AddrPort]routerTag
	bySession map[SessionID]*endpoint
}

// maxAddrsPerEndpoint bounds the address entries one endpoint may hold: its
// active path, the addresses proven while connecting (one per candidate
// that answered) and a few in validation. Beyond it new addresses are not
// routed by address (QUIC packets with our tag still are).
const maxAddrsPerEndpoint = 16

func newRouter() *router {
	r := &router{}
	r.routes.Store(&routes{
		byTag:     map[routerTag]*endpoint{},
		byAddr:    map[netip.AddrPort]routerTag{},
		bySession: map[SessionID]*endpoint{},
	})
	return r
}

// update applies f to a copy of the current maps and publishes the copy if
// f reports a change.
func (r *router) update(f func(next *routes) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.routes.Load()
	next := &routes{byTag: maps.Clone(cur.byTag), byAddr: maps.Clone(cur.byAddr), bySession: maps.Clone(cur.bySession)}
	if !f(next) {
		return false
	}
	r.routes.Store(next)
	return true
}

// add registers an endpoint under its tag and pairing session; it fails if
// either is taken.
func (r *router) add(e *endpoint) bool {
	return r.update(func(n *routes) bool {
		if n.byTag[e.tag] != nil || n.bySession[e.pairing.session] != nil {
			return false
		}
		n.byTag[e.tag] = e
		n.bySession[e.pairing.session] = e
		return true
	})
}

// addSession routes control packets for session s to e.
func (r *router) addSession(s SessionID, e *endpoint) bool {
	return r.update(func(n *routes) bool {
		if n.bySession[s] != nil {
			return false
		}
		n.bySession[s] = e
		return true
	})
}

func (r *router) remove(e *endpoint) {
	r.update(func(n *routes) bool {
		if n.byTag[e.tag] == e {
			delete(n.byTag, e.tag)
		}
		maps.DeleteFunc(n.bySession, func(_ SessionID, v *endpoint) bool { return v == e })
		maps.DeleteFunc(n.byAddr, func(_ netip.AddrPort, t routerTag) bool { return t == e.tag })
		return true
	})
}

// addAddr routes packets from a to tag t, unless t already holds
// maxAddrsPerEndpoint addresses. It reports whether a is routed to t.
func (r *router) addAddr(a netip.AddrPort, t routerTag) bool {
	if cur, ok := r.routes.Load().byAddr[a]; ok && cur == t {
		return true
	}
	return r.update(func(n *routes) bool {
		if addrsOf(n.byAddr, t) >= maxAddrsPerEndpoint {
			return false
		}
		n.byAddr[a] = t
		return true
	})
}

func (r *router) removeAddr(a netip.AddrPort, t routerTag) {
	if cur, ok := r.routes.Load().byAddr[a]; !ok || cur != t {
		return
	}
	r.update(func(n *routes) bool {
		delete(n.byAddr, a)
		return true
	})
}

// retainAddrs drops every address entry of tag t except keep: once a path is
// up, the addresses learned while connecting route nothing.
func (r *router) retainAddrs(t routerTag, keep netip.AddrPort) {
	r.update(func(n *routes) bool {
		maps.DeleteFunc(n.byAddr, func(a netip.AddrPort, tag routerTag) bool { return tag == t && a != keep })
		return true
	})
}

// addrsOf counts the address entries of tag t (tests, diagnostics).
func (r *router) addrsOf(t routerTag) int { return addrsOf(r.routes.Load().byAddr, t) }

// addrsOf counts the entries of byAddr that route to tag t.
func addrsOf(byAddr map[netip.AddrPort]routerTag, t routerTag) int {
	n := 0
	for _, tag := range byAddr {
		if tag == t {
			n++
		}
	}
	return n
}

func (r *router) endpointByTag(t routerTag) *endpoint { return r.routes.Load().byTag[t] }

func (r *router) endpointByAddr(a netip.AddrPort) *endpoint {
	rs := r.routes.Load()
	t, ok := rs.byAddr[a]
	if !ok {
		return nil
	}
	return rs.byTag[t]
}

func (r *router) endpointBySession(s SessionID) *endpoint { return r.routes.Load().bySession[s] }

func (r *router) endpoints() []*endpoint {
	m := r.routes.Load().byTag
	out := make([]*endpoint, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	return out
}

// routeQUIC picks the endpoint for a QUIC packet: by the tag in its
// destination connection ID, else (client Initials) by source address.
func (r *router) routeQUIC(b []byte, from netip.AddrPort) *endpoint {
	route, ok := parseQUICRoute(b)
	if !ok {
		return nil
	}
	if route.tag != 0 && !route.initial {
		if e := r.endpointByTag(route.tag); e != nil {
			return e
		}
	}
	return r.endpointByAddr(from)
}
