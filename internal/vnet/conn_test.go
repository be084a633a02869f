package vnet

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestWriteToCopiesBuffer(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	buf := []byte("first")
	send(t, a, b.LocalAddrPort(), string(buf))
	if _, err := a.WriteToUDPAddrPort(buf, b.LocalAddrPort()); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX") // the caller reuses its buffer
	for range 2 {
		if msg, _ := recv(t, b); msg != "first" {
			t.Fatalf("got %q, want %q", msg, "first")
		}
	}
}

func TestReadTruncates(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	send(t, a, b.LocalAddrPort(), "0123456789")
	buf := make([]byte, 4)
	k, _, err := b.ReadFrom(buf)
	if err != nil || k != 4 || string(buf) != "0123" {
		t.Fatalf("ReadFrom = %d %q %v", k, buf, err)
	}
}

func checkTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a timeout wrapping os.ErrDeadlineExceeded", err)
	}
}

func TestReadDeadline(t *testing.T) {
	n := newNet(t, Options{})
	a := listen(t, n, "198.18.0.1:1")
	b := listen(t, n, "198.18.0.2:1")
	buf := make([]byte, 10)

	// A future deadline expires while the reader waits.
	start := time.Now()
	b.SetReadDeadline(start.Add(20 * time.Millisecond))
	_, _, err := b.ReadFrom(buf)
	checkTimeout(t, err)
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("timed out after %v, before the deadline", d)
	}
	// It stays expired for future reads, even with packets queued.
	send(t, a, b.LocalAddrPort(), "queued")
	_, _, err = b.ReadFrom(buf)
	checkTimeout(t, err)

	// The zero time clears it.
	b.SetReadDeadline(time.Time{})
	if k, _, err := b.ReadFrom(buf); err != nil || string(buf[:k]) != "queued" {
		t.Fatalf("after clearing: %q %v", buf[:k], err)
	}

	// A packet arriving before the deadline is read.
	b.SetReadDeadline(time.Now().Add(time.Hour))
	send(t, a, b.LocalAddrPort(), "in time")
	if k, _, err := b.ReadFrom(buf); err != nil || string(buf[:k]) != "in time" {
		t.Fatalf("before deadline: %q %v", buf[:k], err)
	}
	// SetDeadline sets the read deadline too.
	b.SetDeadline(time.Now().Add(-time.Second))
	_, _, err = b.ReadFrom(buf)
	checkTimeout(t, err)
	if err := b.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteToUDPAddrPort([]byte("x"), a.LocalAddrPort()); err != nil {
		t.Fatalf("write deadline affected writes: %v", err)
	}
}

func TestPastDeadlineUnblocksReader(t *testing.T) {
	n := newNet(t, Options{})
	c := listen(t, n, "198.18.0.1:1")
	errc := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	// Whether or not the reader is blocked yet, it must return promptly.
	time.Sleep(5 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	select {
	case err := <-errc:
		checkTimeout(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("reader not unblocked by a past deadline")
	}
}

func TestCloseUnblocksReader(t *testing.T) {
	n := newNet(t, Options{})
	c := listen(t, n, "198.18.0.1:1")
	peer := listen(t, n, "198.18.0.2:1")
	errc := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(5 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader not unblocked by Close")
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("x"), peer.LocalAddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	// Packets to a closed conn find no listener.
	send(t, peer, ap("198.18.0.1:1"), "x")
	if s := peer.Stats(); s.DroppedUndeliverable != 1 {
		t.Fatalf("stats %+v", s)
	}
}
