package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"ferry/discovery/code"
	"ferry/transfer"
	"ferry/transport"
)

// Exit statuses: a public contract for scripts.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Env is the outside world of one command: streams, environment, and
// whether the streams are terminals.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	StdinTTY       bool
	StdoutTTY      bool
	StderrTTY      bool
}

// OSEnv is the process's own environment.
func OSEnv() Env {
	return Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		StdinTTY: IsTerminal(os.Stdin), StdoutTTY: IsTerminal(os.Stdout), StderrTTY: IsTerminal(os.Stderr),
	}
}

// common are the flags send and receive share.
type common struct {
	rendezvous string
	json       bool
	listen     string
	noLAN      bool
	stun       string
	verbose    bool
	noRelay    bool
	relayOnly  bool
	noPortMap  bool
}

func (c *common) register(fs *flag.FlagSet, env Env) {
	fs.StringVar(&c.rendezvous, "rendezvous", env.Getenv("FERRY_RENDEZVOUS"), "rendezvous server `HOST:PORT` (default $FERRY_RENDEZVOUS; none: pair on the local network)")
	fs.BoolVar(&c.json, "json", false, "print one JSON event per line on stdout")
	fs.StringVar(&c.listen, "listen", "", "UDP `HOST:PORT` for the transfer socket (default: all interfaces, any port)")
	fs.BoolVar(&c.noLAN, "no-lan", false, "do not pair on the local network (needs --rendezvous)")
	fs.StringVar(&c.stun, "stun", "", "extra STUN servers, `HOST:PORT[,HOST:PORT]` (none are contacted unless listed)")
	fs.BoolVar(&c.verbose, "verbose", false, "log details to stderr")
	fs.BoolVar(&c.noRelay, "no-relay", false, "connect directly or not at all: never relay through the rendezvous server")
	fs.BoolVar(&c.noPortMap, "no-portmap", false, "do not ask your router to map a port (PCP, NAT-PMP, UPnP) for a direct path")
	fs.BoolVar(&c.relayOnly, "relay-only", false, "send everything through the rendezvous server's relay (needs --rendezvous): the peer never sees your addresses")
}

// check reports a usage error in the shared flags, or "".
func (c *common) check() string {
	switch {
	case c.noLAN && c.rendezvous == "":
		return "--no-lan needs --rendezvous"
	case c.relayOnly && c.noRelay:
		return "--relay-only and --no-relay exclude each other"
	case c.relayOnly && c.rendezvous == "":
		return "--relay-only needs --rendezvous"
	}
	return ""
}

// paths is the path policy the relay flags ask for.
func (c *common) paths() transport.PathPolicy {
	switch {
	case c.relayOnly:
		return transport.RelayOnly
	case c.noRelay:
		return transport.DirectOnly
	}
	return transport.AnyPath
}

func (c *common) config(env Env) transfer.Config {
	cfg := transfer.Config{
		Rendezvous: c.rendezvous,
		NoLAN:      c.noLAN,
		Paths:      c.paths(),
		ListenAddr: c.listen,
		Logger:     logger(env, c.verbose),
		NoPortMap:  c.noPortMap,
	}
	for _, s := range strings.Split(c.stun, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.STUNServers = append(cfg.STUNServers, s)
		}
	}
	return cfg
}

// sink picks JSON or human output.
func (c *common) sink(env Env, opts ...SinkOption) (transfer.Sink, func()) {
	if c.json {
		return NewJSONSink(env.Stdout, opts...), func() {}
	}
	return NewHumanSink(env.Stdout, env.StdoutTTY, opts...)
}

// logger logs warnings to stderr, and with verbose everything.
func logger(env Env, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
}

// receiveSink is the receiver's sink: JSON lines on stdout, or messages on
// stderr so that stdout carries a received text and nothing else.
func (c *common) receiveSink(env Env) (transfer.Sink, func()) {
	if c.json {
		return NewJSONSink(env.Stdout), func() {}
	}
	return NewHumanSink(env.Stderr, env.StderrTTY, WithTextOutput(env.Stdout, env.StdoutTTY))
}

func newFlagSet(name, usage string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

const sendUsage = `Usage: ferry send [flags] PATH...
       ferry send [flags] --text TEXT|-

Sends files and folders, or with --text a text of up to 1 MiB ("-": read
from standard input), which the receiver prints instead of saving. Prints
a share code; run "ferry receive" on the other computer and type it there.
With --qr it also prints the share link (ferry://receive/CODE, with
?rendezvous=HOST:PORT when there is a server) and its QR code; "ferry
receive LINK" or opening the link works like the code. --json output
always carries the link in the code event.

Flags:
`

const receiveUsage = `Usage: ferry receive [flags] [CODE|LINK]

Receives what a "ferry send" offers: files into --out, or a text, which is
printed on standard output (control characters replaced by U+FFFD) and
not saved; messages go to standard error. The code can be given as an argument,
in $FERRY_CODE, or typed at the prompt (safest: other users of this
computer can see process arguments). A share link (ferry://receive/CODE)
works wherever a code does; its rendezvous server is used unless
--rendezvous is given.

Flags:
`

// Send runs `ferry send`.
func Send(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("send", sendUsage, env)
	var c common
	c.register(fs, env)
	follow := fs.Bool("follow-links", false, "send what symbolic links inside folders point to (default: leave links out)")
	showQR := fs.Bool("qr", false, "print the share link and its QR code after the code")
	textArg := fs.String("text", "", "send `TEXT` instead of files (\"-\": read it from standard input); at most 1 MiB of UTF-8")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	isText := false
	fs.Visit(func(f *flag.Flag) { isText = isText || f.Name == "text" })
	switch {
	case isText && fs.NArg() > 0:
		fmt.Fprintln(env.Stderr, "ferry send: --text and files to send exclude each other")
		return ExitUsage
	case !isText && fs.NArg() == 0:
		fmt.Fprintln(env.Stderr, "ferry send: name at least one file or folder to send, or a --text")
		fs.Usage()
		return ExitUsage
	}
	if msg := c.check(); msg != "" {
		fmt.Fprintln(env.Stderr, "ferry send: "+msg)
		return ExitUsage
	}
	var text string
	if isText {
		var err error
		if text, err = readTextArg(*textArg, env); err != nil {
			fmt.Fprintln(env.Stderr, "ferry send: "+err.Error())
			return ExitUsage
		}
	}
	paths := fs.Args()
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			return fail(env, &c, transfer.Errorf(transfer.KindNotFound, "check the path", "cannot send %q: %v", p, errors.Unwrap(err)))
		}
	}
	opts := []SinkOption{WithLink(c.rendezvous)}
	if *showQR {
		opts = append(opts, WithQR(qrANSI(env)))
	}
	sink, finish := c.sink(env, opts...)
	cfg := c.config(env)
	cfg.FollowLinks = *follow
	var err error
	if isText {
		_, err = transfer.SendText(ctx, cfg, text, sink)
	} else {
		_, err = transfer.SendFiles(ctx, cfg, paths, sink)
	}
	finish()
	if err != nil {
		return failWith(sink, err)
	}
	return ExitOK
}

// Receive runs `ferry receive`.
func Receive(ctx context.Context, args []string, env Env) int {
	fs := newFlagSet("receive", receiveUsage, env)
	var c common
	c.register(fs, env)
	out := fs.String("out", ".", "save into `DIR`")
	yes := fs.Bool("yes", false, "accept the offer without asking")
	overwrite := fs.Bool("overwrite", false, "replace existing files instead of saving \"name (1).ext\"")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(env.Stderr, "ferry receive: give at most one code")
		return ExitUsage
	}
	explicitRV := false
	fs.Visit(func(f *flag.Flag) { explicitRV = explicitRV || f.Name == "rendezvous" })
	raw := fs.Arg(0)
	if raw == "" {
		raw = env.Getenv("FERRY_CODE")
	}
	var sc code.Code
	var err error
	if raw != "" {
		// Read before the flags are checked, as a link may name the server
		// they need; a bad code is reported after a usage error.
		sc, err = c.codeFrom(raw, explicitRV, env.Stderr)
	}
	if msg := c.check(); msg != "" {
		fmt.Fprintln(env.Stderr, "ferry receive: "+msg)
		return ExitUsage
	}
	if err != nil {
		return fail(env, &c, err)
	}
	if raw == "" {
		if !env.StdinTTY {
			fmt.Fprintln(env.Stderr, "ferry receive: no code given: pass it as an argument, in FERRY_CODE, or run in a terminal to be asked")
			return ExitUsage
		}
		if raw, err = PromptCode(env.Stdin, env.Stderr, code.Complete); err != nil {
			fmt.Fprintln(env.Stderr, "ferry receive: no code entered")
			return ExitUsage
		}
		if sc, err = c.codeFrom(raw, explicitRV, env.Stderr); err != nil {
			return fail(env, &c, err)
		}
		if msg := c.check(); msg != "" { // a pasted link may change the server
			fmt.Fprintln(env.Stderr, "ferry receive: "+msg)
			return ExitUsage
		}
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return fail(env, &c, err)
	}
	sink, finish := c.receiveSink(env)
	opts := transfer.ReceiveOptions{OutDir: dir, Overwrite: *overwrite, Sink: sink}
	if !*yes {
		ask := func(question string) (bool, error) {
			if !env.StdinTTY || c.json {
				return false, transfer.Errorf(transfer.KindDeclined, "pass --yes to accept without being asked", "nobody at a terminal to accept the offer")
			}
			finish()
			return Confirm(env.Stdin, env.Stderr, question)
		}
		opts.Accept = func(_ context.Context, m *transfer.Manifest) (bool, error) {
			return ask(fmt.Sprintf("Receive %d files (%s) into %s?", m.FileCount(), HumanBytes(m.TotalSize()), dir))
		}
		opts.AcceptText = func(_ context.Context, n int64) (bool, error) {
			return ask(textQuestion(n))
		}
	}
	_, err = transfer.ReceiveFiles(ctx, c.config(env), sc, opts)
	finish()
	if err != nil {
		return failWith(sink, err)
	}
	return ExitOK
}

func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

// fail reports an error before any sink exists.
func fail(env Env, c *common, err error) int {
	if c.json {
		return failWith(NewJSONSink(env.Stdout), err)
	}
	fmt.Fprintf(env.Stderr, "Error: %v\n", err)
	return ExitFailure
}

// failWith reports err as an error event and returns the failure status.
func failWith(sink transfer.Sink, err error) int {
	sink(transfer.Event{Kind: transfer.EventError, ErrKind: transfer.KindOf(err), Message: err.Error()})
	return ExitFailure
}
