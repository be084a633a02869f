package ui

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"

	"ferry/discovery/code"
	"ferry/transfer"
	"ferry/transport"
)

// Engine is what the window needs from the transfer engine. Every method
// blocks until the transfer ends and reports through sink, which it calls
// from its own goroutines; ctx cancels the transfer. SendText sends a text
// (transfer.CheckText), which the receiver gets as transfer.EventText.
type Engine interface {
	Send(ctx context.Context, paths []string, sink transfer.Sink) error
	SendText(ctx context.Context, text string, sink transfer.Sink) error
	Receive(ctx context.Context, code string, opts ReceiveRequest, sink transfer.Sink) error
}

// ReceiveRequest says where and how to receive.
type ReceiveRequest struct {
	// OutDir is the folder to save into; it exists.
	OutDir string
	// Overwrite replaces existing files instead of saving "name (1).ext".
	Overwrite bool
	// Accept is asked about the offer, from the engine's goroutine; it
	// blocks until the user decides or ctx ends.
	Accept func(ctx context.Context, m *transfer.Manifest) (bool, error)
	// AcceptText is asked about a text of n bytes, as Accept about files.
	AcceptText func(ctx context.Context, n int64) (bool, error)
	// OutDirAfterAccept, when set, returns the folder chosen in the offer
	// dialog. Only engines implementing LateOutDirEngine read it (after
	// Accept returns true); the others save into OutDir.
	OutDirAfterAccept func() string
}

// LateOutDirEngine is an Engine that reads ReceiveRequest.OutDirAfterAccept
// once the offer is accepted, so the offer dialog can let the user pick
// another folder. The engine NewEngine returns implements it.
type LateOutDirEngine interface {
	Engine
	ReadsOutDirAfterAccept()
}

// NewEngine adapts the real engine (transfer.SendFiles/ReceiveFiles) with
// the user's settings: the rendezvous server, or none for the local network
// only, whether transfers may be relayed through it, and whether to follow
// links when sending.
func NewEngine(s Settings) Engine {
	paths := transport.AnyPath
	if !s.AllowRelay {
		paths = transport.DirectOnly
	}
	return &realEngine{cfg: transfer.Config{
		Rendezvous:  strings.TrimSpace(s.Rendezvous),
		Paths:       paths,
		FollowLinks: s.FollowLinks,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}}
}

type realEngine struct {
	cfg transfer.Config
}

func (e *realEngine) Send(ctx context.Context, paths []string, sink transfer.Sink) error {
	if len(paths) == 0 {
		return transfer.Errorf(transfer.KindNotFound, "", "nothing to send")
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			return transfer.Errorf(transfer.KindNotFound, "check that it still exists", "cannot send %q: %v", p, errors.Unwrap(err))
		}
	}
	_, err := transfer.SendFiles(ctx, e.cfg, paths, sink)
	return err
}

func (e *realEngine) SendText(ctx context.Context, text string, sink transfer.Sink) error {
	_, err := transfer.SendText(ctx, e.cfg, text, sink)
	return err
}

func (e *realEngine) Receive(ctx context.Context, raw string, req ReceiveRequest, sink transfer.Sink) error {
	c, err := code.Parse(raw)
	if err != nil {
		return &transfer.Error{Kind: transfer.KindBadCode, Err: err, Hint: "check the code with the sender"}
	}
	_, err = transfer.ReceiveFiles(ctx, e.cfg, c, transfer.ReceiveOptions{
		OutDir:            req.OutDir,
		Overwrite:         req.Overwrite,
		Accept:            req.Accept,
		AcceptText:        req.AcceptText,
		OutDirAfterAccept: req.OutDirAfterAccept,
		Sink:              sink,
	})
	return err
}

// ReadsOutDirAfterAccept marks the real engine as a LateOutDirEngine: the
// folder chosen in the offer dialog is used.
func (e *realEngine) ReadsOutDirAfterAccept() {}
