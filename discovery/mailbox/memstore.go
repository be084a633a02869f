package mailbox

import (
	"container/heap"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MemStore is the in-memory Store: everything lives in one process and is
// lost when it exits. It is safe for concurrent use.
type MemStore struct {
	mu          sync.Mutex
	nameplates  map[string]*memNameplate
	mailboxes   map[string]*memMailbox
	owners      map[string]int // open nameplates per owner
	free        numHeap        // freed nameplate numbers, all below next
	next        uint64         // lowest number never handed out
	nextMailbox uint64
}

type memNameplate struct {
	name      string
	num       uint64 // 0 for a meet nameplate
	meet      bool   // created by Meet; its name is not a number
	owner     string
	allocSide string
	expires   time.Time       // zero once a second side claimed
	claimers  map[string]bool // side -> still holds the nameplate
	mb        *memMailbox     // nil until the first claim
}

type memMailbox struct {
	id      string
	np      *memNameplate   // nil once the nameplate is gone
	sides   map[string]bool // side -> still open
	conns   map[string]int  // side -> claims not yet ended by a disconnect
	msgs    []Message
	changed chan struct{}
	expired bool
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{
		nameplates: make(map[string]*memNameplate),
		mailboxes:  make(map[string]*memMailbox),
		owners:     make(map[string]int),
		next:       1,
	}
}

// Len returns how many nameplates and mailboxes the store holds.
func (s *MemStore) Len() (nameplates, mailboxes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nameplates), len(s.mailboxes)
}

// Allocate implements Store.
func (s *MemStore) Allocate(_ context.Context, req AllocateRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.MaxPerOwner > 0 && s.owners[req.Owner] >= req.MaxPerOwner {
		return "", ErrTooManyNameplates
	}
	var num uint64
	if s.free.Len() > 0 {
		num = heap.Pop(&s.free).(uint64)
	} else {
		num = s.next
		s.next++
	}
	np := &memNameplate{
		name:      strconv.FormatUint(num, 10),
		num:       num,
		owner:     req.Owner,
		allocSide: req.Side,
		expires:   req.Expires,
		claimers:  make(map[string]bool, 2),
	}
	s.nameplates[np.name] = np
	s.owners[req.Owner]++
	return np.name, nil
}

// Claim implements Store.
func (s *MemStore) Claim(_ context.Context, nameplate, side string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	np := s.nameplates[nameplate]
	if np == nil {
		return "", ErrNoSuchNameplate
	}
	return s.claimLocked(np, side)
}

// Meet implements Store.
func (s *MemStore) Meet(_ context.Context, req MeetRequest) (string, error) {
	if !ValidMeetNameplate(req.Nameplate) {
		return "", errBadMeetNameplate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	np := s.nameplates[req.Nameplate]
	if np == nil {
		if req.MaxPerOwner > 0 && s.owners[req.Owner] >= req.MaxPerOwner {
			return "", ErrTooManyNameplates
		}
		np = &memNameplate{
			name:     req.Nameplate,
			meet:     true,
			owner:    req.Owner,
			expires:  req.Expires,
			claimers: make(map[string]bool, 2),
		}
		s.nameplates[np.name] = np
		s.owners[req.Owner]++
	}
	return s.claimLocked(np, req.Side)
}

// claimLocked makes side a member of np with Claim's rules. s.mu is held.
func (s *MemStore) claimLocked(np *memNameplate, side string) (string, error) {
	if _, known := np.claimers[side]; known {
		np.claimers[side] = true
		np.mb.sides[side] = true
		np.mb.conns[side]++
		return np.mb.id, nil
	}
	if len(np.claimers) >= 2 {
		return "", ErrCrowded
	}
	if np.mb == nil {
		s.nextMailbox++
		np.mb = &memMailbox{
			id:      "m" + strconv.FormatUint(s.nextMailbox, 10),
			np:      np,
			sides:   make(map[string]bool, 2),
			conns:   make(map[string]int, 2),
			changed: make(chan struct{}),
		}
		s.mailboxes[np.mb.id] = np.mb
	}
	np.claimers[side] = true
	np.mb.sides[side] = true
	np.mb.conns[side]++
	if len(np.claimers) == 2 {
		np.expires = time.Time{}
	}
	return np.mb.id, nil
}

// Release implements Store.
func (s *MemStore) Release(_ context.Context, nameplate, side string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	np := s.nameplates[nameplate]
	if np == nil {
		return nil
	}
	if _, known := np.claimers[side]; known {
		s.unhold(np, side)
	} else if len(np.claimers) == 0 && side == np.allocSide {
		s.freeNameplate(np)
	}
	return nil
}

// Add implements Store.
func (s *MemStore) Add(_ context.Context, mailbox string, msg Message, maxMessages int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mailboxes[mailbox]
	switch {
	case mb == nil || !mb.sides[msg.Side]:
		return ErrNotClaimed
	case mb.expired:
		return ErrExpired
	case maxMessages > 0 && len(mb.msgs) >= maxMessages:
		return ErrMailboxFull
	}
	mb.msgs = append(mb.msgs, msg)
	mb.notify()
	return nil
}

// Watch implements Store.
func (s *MemStore) Watch(_ context.Context, mailbox string, from int) ([]Message, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mailboxes[mailbox]
	switch {
	case mb == nil:
		return nil, nil, ErrNotClaimed
	case mb.expired:
		return nil, nil, ErrExpired
	}
	from = min(max(from, 0), len(mb.msgs))
	return slices.Clone(mb.msgs[from:]), mb.changed, nil
}

// Close implements Store.
func (s *MemStore) Close(_ context.Context, mailbox, side string, mood Mood) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mailboxes[mailbox]
	if mb == nil {
		return nil
	}
	if _, known := mb.sides[side]; !known {
		return nil
	}
	if mood == "" && mb.conns[side] > 1 {
		// The side claimed again from another connection before this
		// one was noticed gone: it stays.
		mb.conns[side]--
		return nil
	}
	mb.conns[side] = 0
	mb.sides[side] = false
	if np := mb.np; np != nil {
		if mood == Scary {
			s.freeNameplate(np)
		} else if _, known := np.claimers[side]; known {
			s.unhold(np, side)
		}
	}
	for _, open := range mb.sides {
		if open {
			return nil
		}
	}
	if mb.np != nil {
		s.freeNameplate(mb.np)
	}
	delete(s.mailboxes, mb.id)
	mb.notify()
	return nil
}

// Expire implements Store.
func (s *MemStore) Expire(_ context.Context, now time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var expired []string
	for name, np := range s.nameplates {
		if np.expires.IsZero() || now.Before(np.expires) {
			continue
		}
		expired = append(expired, name)
		if mb := np.mb; mb != nil {
			mb.expired = true
			mb.notify()
		}
		s.freeNameplate(np)
	}
	slices.Sort(expired)
	return expired, nil
}

// unhold marks side as no longer holding np and frees np when nobody does.
func (s *MemStore) unhold(np *memNameplate, side string) {
	np.claimers[side] = false
	for _, holding := range np.claimers {
		if holding {
			return
		}
	}
	s.freeNameplate(np)
}

// freeNameplate removes np from the namespace; its number, unless it is a
// meet nameplate, becomes available again. Its mailbox, if any, lives on
// without it.
func (s *MemStore) freeNameplate(np *memNameplate) {
	if s.nameplates[np.name] != np {
		return
	}
	delete(s.nameplates, np.name)
	if s.owners[np.owner]--; s.owners[np.owner] <= 0 {
		delete(s.owners, np.owner)
	}
	if !np.meet {
		heap.Push(&s.free, np.num)
	}
	if np.mb != nil {
		np.mb.np = nil
	}
}

// notify wakes everyone watching mb.
func (mb *memMailbox) notify() {
	close(mb.changed)
	mb.changed = make(chan struct{})
}

// numHeap is a min-heap of nameplate numbers.
type numHeap []uint64

func (h numHeap) Len() int           { return len(h) }
func (h numHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h numHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *numHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *numHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
