package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
)

// The side-by-side benchmark's plain TCP copy is this test binary run
// again in one of two modes, so that it is a separate process (with its
// own CPU time and peak RSS) like every other tool, and needs nothing
// installed.
const (
	// peersTCPEnv is "recv" (listen on 127.0.0.1:0, print the address,
	// write what one connection sends into peersTCPPathEnv, fsync, exit)
	// or "send" (connect to peersTCPAddrEnv and stream peersTCPPathEnv).
	peersTCPEnv     = "FERRY_E2E_PEERS_TCP"
	peersTCPPathEnv = "FERRY_E2E_PEERS_TCP_PATH"
	peersTCPAddrEnv = "FERRY_E2E_PEERS_TCP_ADDR"
	// peersTCPListenEnv is where the receiver listens (default 127.0.0.1:0).
	peersTCPListenEnv = "FERRY_E2E_PEERS_TCP_LISTEN"
)

// runPeersTCP is the plain TCP copy: no framing, no encryption, no
// checksum, io.Copy on both sides (sendfile and splice where the kernel
// offers them), and the receiver fsyncs as ferry's receiver does.
func runPeersTCP() int {
	path := os.Getenv(peersTCPPathEnv)
	var err error
	switch os.Getenv(peersTCPEnv) {
	case "recv":
		err = peersTCPReceive(path, os.Getenv(peersTCPListenEnv))
	case "send":
		err = peersTCPSend(os.Getenv(peersTCPAddrEnv), path)
	default:
		err = fmt.Errorf("%s=%q: want recv or send", peersTCPEnv, os.Getenv(peersTCPEnv))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcp copy:", err)
		return 1
	}
	return 0
}

func peersTCPReceive(path, listen string) error {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Fprintf(os.Stderr, "tcp copy listening tcp=%s\n", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(f, c)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "received %d bytes into %s\n", n, filepath.Base(path))
	return f.Close()
}

func peersTCPSend(addr, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.Copy(c, f); err != nil {
		return err
	}
	// Close cleanly so the receiver sees EOF after the last byte.
	return c.Close()
}
