package transport

import (
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
//     carry no tag of ours (the client's first Initial packets). Updated when
//     a path moves.
//   - bySession: session ID -> endpoint, for control packets.
//
// The maps are copy-on-write snapshots behind atomic pointers: lookups, made
// for every datagram, take no lock; changes (rare) take mu.
type router struct {
	mu        sync.Mutex
	byTag     atomic.Pointer[map[routerTag]*endpoint]
	byAddr    atomic.Pointer[map[netip.AddrPort]routerTag]
	bySession atomic.Pointer[map[SessionID]*endpoint]
}

func newRouter() *router {
	r := &router{}
	r.byTag.Store(&map[routerTag]*endpoint{})
	r.byAddr.Store(&map[netip.AddrPort]routerTag{})
	r.bySession.Store(&map[SessionID]*endpoint{})
	return r
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// add registers an endpoint; it fails if its tag or session is taken.
func (r *router) add(e *endpoint) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	tags, sessions := *r.byTag.Load(), *r.bySession.Load()
	if _, ok := tags[e.tag]; ok {
		return false
	}
	if _, ok := sessions[e.keys.session]; ok {
		return false
	}
	nt := cloneMap(tags)
	nt[e.tag] = e
	ns := cloneMap(sessions)
	ns[e.keys.session] = e
	r.byTag.Store(&nt)
	r.bySession.Store(&ns)
	return true
}

func (r *router) remove(e *endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nt := cloneMap(*r.byTag.Load())
	if nt[e.tag] == e {
		delete(nt, e.tag)
	}
	ns := cloneMap(*r.bySession.Load())
	if ns[e.keys.session] == e {
		delete(ns, e.keys.session)
	}
	na := cloneMap(*r.byAddr.Load())
	for a, t := range na {
		if t == e.tag {
			delete(na, a)
		}
	}
	r.byTag.Store(&nt)
	r.bySession.Store(&ns)
	r.byAddr.Store(&na)
}

func (r *router) addAddr(a netip.AddrPort, t routerTag) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := (*r.byAddr.Load())[a]; ok && cur == t {
		return
	}
	na := cloneMap(*r.byAddr.Load())
	na[a] = t
	r.byAddr.Store(&na)
}

func (r *router) removeAddr(a netip.AddrPort, t routerTag) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := (*r.byAddr.Load())[a]; !ok || cur != t {
		return
	}
	na := cloneMap(*r.byAddr.Load())
	delete(na, a)
	r.byAddr.Store(&na)
}

// retainAddrs drops every address entry of tag t except keep: once a path is
// up, the addresses learned while connecting route nothing.
func (r *router) retainAddrs(t routerTag, keep netip.AddrPort) {
	r.mu.Lock()
	defer r.mu.Unlock()
	na := cloneMap(*r.byAddr.Load())
	for a, tag := range na {
		if tag == t && a != keep {
			delete(na, a)
		}
	}
	r.byAddr.Store(&na)
}

func (r *router) endpointByTag(t routerTag) *endpoint { return (*r.byTag.Load())[t] }

func (r *router) endpointByAddr(a netip.AddrPort) *endpoint {
	t, ok := (*r.byAddr.Load())[a]
	if !ok {
		return nil
	}
	return (*r.byTag.Load())[t]
}

func (r *router) endpointBySession(s SessionID) *endpoint { return (*r.bySession.Load())[s] }

func (r *router) endpoints() []*endpoint {
	m := *r.byTag.Load()
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
