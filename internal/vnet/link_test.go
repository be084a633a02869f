package vnet

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"
)

// sendNumbered sends count packets carrying their index.
func sendNumbered(t *testing.T, from, to *Conn, count int) {
	t.Helper()
	var buf [4]byte
	for i := range count {
		binary.BigEndian.PutUint32(buf[:], uint32(i))
		if _, err := from.WriteToUDPAddrPort(buf[:], to.LocalAddrPort()); err != nil {
			t.Fatal(err)
		}
	}
}

// recvNumbered reads count numbered packets.
func recvNumbered(t *testing.T, c *Conn, count int) []int {
	t.Helper()
	got := make([]int, 0, count)
	for range count {
		msg, _ := recv(t, c)
		got = append(got, int(binary.BigEndian.Uint32([]byte(msg))))
	}
	return got
}

// drainNumbered returns the numbers of all packets queued on c.
func drainNumbered(t *testing.T, c *Conn) []int {
	t.Helper()
	return recvNumbered(t, c, c.Queued())
}

func TestLossAll(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	n.SetLink(ip("198.18.0.1"), ip("198.18.0.2"), Link{Loss: 1})
	sendNumbered(t, a, b, 100)
	expectEmpty(t, b)
	if s := a.Stats(); s.DroppedLost != 100 || s.PacketsSent != 100 {
		t.Fatalf("stats %+v", s)
	}
	if k := log.count(ReasonLoss); k != 100 {
		t.Fatalf("tap saw %d losses", k)
	}
	// A zero Link removes the impairment.
	n.SetLink(ip("198.18.0.2"), ip("198.18.0.1"), Link{})
	sendNumbered(t, a, b, 1)
	if b.Queued() != 1 {
		t.Fatal("loss not removed")
	}
}

func TestLossHalf(t *testing.T) {
	pattern := func(seed int64) []int {
		n := newNet(t, Options{Seed: seed})
		a := listen(t, n, "198.18.0.1:1")
		b := listen(t, n, "198.18.0.2:1")
		n.SetLink(ip("198.18.0.1"), ip("198.18.0.2"), Link{Loss: 0.5})
		sendNumbered(t, a, b, 2000)
		return drainNumbered(t, b)
	}
	got := pattern(42)
	if len(got) < 700 || len(got) > 1300 {
		t.Fatalf("%d of 2000 packets arrived with Loss 0.5", len(got))
	}
	if again := pattern(42); !slices.Equal(got, again) {
		t.Fatal("same seed gave different loss patterns")
	}
	if other := pattern(43); slices.Equal(got, other) {
		t.Fatal("different seeds gave the same loss pattern")
	}
}

func TestDelayKeepsOrder(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	const delay = 20 * time.Millisecond
	n.SetLink(ip("198.18.0.1"), ip("198.18.0.2"), Link{Delay: delay, Jitter: 10 * time.Millisecond})
	start := time.Now()
	sendNumbered(t, a, b, 1)
	if b.Queued() != 0 && time.Since(start) < delay {
		t.Fatal("delayed packet delivered at once")
	}
	recvNumbered(t, b, 1)
	if d := time.Since(start); d < delay {
		t.Fatalf("packet arrived after %v, want >= %v", d, delay)
	}

	sendNumbered(t, a, b, 500)
	// Removing the delay must not let new packets overtake delayed ones.
	n.SetLink(ip("198.18.0.1"), ip("198.18.0.2"), Link{})
	var buf [4]byte
	for i := 500; i < 600; i++ {
		binary.BigEndian.PutUint32(buf[:], uint32(i))
		a.WriteToUDPAddrPort(buf[:], b.LocalAddrPort())
	}
	got := recvNumbered(t, b, 600)
	if !slices.IsSorted(got) {
		t.Fatalf("packets reordered: %v", got)
	}
}

func TestReorder(t *testing.T) {
	n := newNet(t, Options{Seed: 3})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	n.SetHostLink(ip("198.18.0.2"), Link{Delay: time.Millisecond, Reorder: 0.2})
	const count = 300
	sendNumbered(t, a, b, count)
	got := recvNumbered(t, b, count)
	inversions := 0
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			inversions++
		}
	}
	if inversions == 0 {
		t.Fatal("Reorder 0.2 reordered nothing")
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i {
			t.Fatalf("packet %d missing or duplicated", i)
		}
	}
}

func TestDown(t *testing.T) {
	n := newNet(t, Options{})
	log := newTapLog(t, n)
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	c := listen(t, n, "198.18.0.3:1")
	n.SetLink(ip("198.18.0.1"), ip("198.18.0.2"), Link{Down: true, Delay: time.Second})
	sendNumbered(t, a, b, 10)
	sendNumbered(t, b, a, 10)
	expectEmpty(t, a)
	expectEmpty(t, b)
	if k := log.count(ReasonLinkDown); k != 20 {
		t.Fatalf("tap saw %d link-down drops", k)
	}
	// Other links are unaffected.
	sendNumbered(t, a, c, 1)
	if c.Queued() != 1 {
		t.Fatal("unrelated link affected")
	}
	n.SetLink(ip("198.18.0.1"), ip("198.18.0.2"), Link{})
	sendNumbered(t, a, b, 1)
	if b.Queued() != 1 {
		t.Fatal("link still down")
	}

	// A host link cuts the host off from everyone.
	n.SetHostLink(ip("198.18.0.1"), Link{Down: true})
	sendNumbered(t, b, a, 1)
	sendNumbered(t, a, c, 1)
	expectEmpty(t, a)
	if c.Queued() != 1 {
		t.Fatal("host link did not cut the host off")
	}
}

func TestHostLinkCombines(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	aIP, bIP := ip("198.18.0.1"), ip("198.18.0.2")

	// Delays add.
	n.SetLink(aIP, bIP, Link{Delay: 20 * time.Millisecond})
	n.SetHostLink(bIP, Link{Delay: 30 * time.Millisecond})
	start := time.Now()
	sendNumbered(t, a, b, 1)
	recvNumbered(t, b, 1)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("arrived after %v, want >= 50ms", d)
	}

	// Down wins.
	n.SetHostLink(bIP, Link{Down: true})
	sendNumbered(t, a, b, 1)
	if s := a.Stats(); s.DroppedLost != 1 {
		t.Fatalf("stats %+v", s)
	}

	// Loss probabilities combine: 1-(1-0.5)(1-0.5) = 0.75.
	n.SetLink(aIP, bIP, Link{Loss: 0.5})
	n.SetHostLink(bIP, Link{Loss: 0.5})
	sendNumbered(t, a, b, 2000)
	if k := b.Queued(); k < 380 || k > 620 {
		t.Fatalf("%d of 2000 arrived, want about 500", k)
	}
}

func TestLinkUsesWireAddresses(t *testing.T) {
	n := newNet(t, Options{})
	nat := n.NewNAT(ip("192.0.2.1"), NATOptions{})
	client := natListen(t, nat, "10.0.0.2:5000")
	server := listen(t, n, "198.18.0.1:443")

	// The private address is not on the internet: this link matches nothing.
	n.SetLink(ip("10.0.0.2"), ip("198.18.0.1"), Link{Down: true})
	send(t, client, server.LocalAddrPort(), "through")
	recv(t, server)

	n.SetLink(nat.Public(), ip("198.18.0.1"), Link{Down: true})
	send(t, client, server.LocalAddrPort(), "blocked")
	expectEmpty(t, server)
	if s := client.Stats(); s.DroppedLost != 1 {
		t.Fatalf("stats %+v", s)
	}
}
