// Command ferry sends files between two computers, peer to peer, paired by
// a short share code. With no arguments it opens the desktop app; the
// subcommands are its command-line face. This is the only file that imports
// Fyne's app package (the GLFW driver, which needs cgo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"fyne.io/fyne/v2/app"
	"github.com/redis/go-redis/v9"

	"ferry/assets"
	"ferry/discovery/code"
	"ferry/discovery/mailbox"
	"ferry/transport"
	"ferry/ui"
	"ferry/ui/cli"
)

// version is the release this binary was built from; release builds set it
// with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit statuses, a public contract for scripts.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `ferry sends files peer to peer, paired by a short share code.

Usage:
  ferry                                   open the desktop app
  ferry send [--rendezvous HOST:PORT] [--qr] [--json] PATH...
                                          send files and folders; prints a code
                                          (--qr: and its share link and QR code)
  ferry send [flags] --text TEXT|-        send a text of up to 1 MiB instead
                                          ("-": read it from standard input)
  ferry receive [--rendezvous HOST:PORT] [--out DIR] [--yes] [--overwrite] [--json] [CODE|LINK]
                                          receive with the code or link from the sender;
                                          a text is printed on stdout, not saved
  ferry ferry://receive/CODE[?rendezvous=HOST:PORT]
                                          open the desktop app's Receive tab filled in
                                          from a share link (nothing starts unasked)
  ferry rendezvous [--listen HOST:PORT] [--no-relay] [--relay-rate MIB/S]
                   [--redis redis://HOST:PORT/DB] [--advertise HOST:PORT]
                                          run a rendezvous server: mailbox and relay
                                          (TCP) and STUN (UDP) on one port (default
                                          :7887; --max-nameplates-per-ip N); with
                                          --redis, servers sharing one Redis act as one,
                                          each --advertise-ing its own address for relaying
  ferry version                           print the version and exit
  ferry help                              show this help

Run "ferry send -h" or "ferry receive -h" for all flags. Without
--rendezvous (or FERRY_RENDEZVOUS) the two sides pair on the local network.
With one, a transfer that finds no direct path is relayed through it
(--no-relay: direct or nothing; --relay-only: always through the relay).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return runGUI(nil, "", stderr)
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "ferry %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "rendezvous":
		return runRendezvous(args[1:], stderr)
	case "send", "receive":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// The first Ctrl-C stops the transfer cleanly (partial data is
		// kept); a second one ends the process at once.
		context.AfterFunc(ctx, stop)
		env := cli.OSEnv()
		env.Stdout, env.Stderr = stdout, stderr
		if args[0] == "send" {
			return cli.Send(ctx, args[1:], env)
		}
		return cli.Receive(ctx, args[1:], env)
	default:
		// The desktop launcher passes files to open (`ferry FILE...`, as
		// paths or file:// URLs) or a share link it was asked to open.
		if paths, link, ok := launchArgs(args); ok {
			return runGUI(paths, link, stderr)
		}
		fmt.Fprintf(stderr, "ferry: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// runGUI opens the desktop app, with paths (if any) ready to send, or on
// the Receive tab filled in from a share link (if not "").
func runGUI(paths []string, link string, stderr io.Writer) int {
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		if link != "" {
			fmt.Fprint(stderr, "ferry: no display to open the desktop app on; in a terminal use \"ferry receive LINK\"\n")
			return exitUsage
		}
		fmt.Fprint(stderr, "ferry: no display to open the desktop app on; in a terminal use \"ferry send\" and \"ferry receive\" (see \"ferry help\")\n")
		return exitUsage
	}
	a := app.NewWithID(appID)
	a.SetIcon(assets.Icon)
	if link != "" {
		ui.RunLink(a, ui.NewEngine, link)
	} else {
		ui.Run(a, ui.NewEngine, paths...)
	}
	return exitOK
}

// appID is the desktop app's ID (as in FyneApp.toml): it names the
// preferences and storage folders.
const appID = "io.github.ferry"

// defaultRendezvousListen is where `ferry rendezvous` listens: TCP for the
// mailbox and the relay, and UDP for STUN, on the same port.
const defaultRendezvousListen = ":7887"

// openRedisStore connects the mailbox store to the Redis at rawURL. An
// unreachable Redis is logged, not fatal: it may come up after the server.
// The password is never logged.
func openRedisStore(ctx context.Context, rawURL string, logger *slog.Logger) (mailbox.Store, func(), error) {
	opt, err := mailbox.ParseRedisURL(rawURL)
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(opt)
	store, err := mailbox.NewRedisStore(rdb, mailbox.RedisStoreOptions{Logger: logger})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	logger.Info("rendezvous store: redis", "addr", opt.Addr, "db", opt.DB, "user", opt.Username, "tls", opt.TLSConfig != nil)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		logger.Warn("redis unreachable for now; requests fail until it answers", "addr", opt.Addr, "err", err)
	}
	return store, func() {
		store.Stop()
		rdb.Close()
	}, nil
}

// runRendezvous serves the mailbox, the relay (unless --no-relay) and STUN
// until interrupted, then shuts down gracefully.
func runRendezvous(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("rendezvous", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultRendezvousListen, "`HOST:PORT` for the mailbox and the relay (TCP) and STUN (UDP)")
	perIP := fs.Int("max-nameplates-per-ip", mailbox.DefaultMaxNameplatesPerIP, "open codes one client address may hold; raise it when many users share one address, -1 for no limit")
	noRelay := fs.Bool("no-relay", false, "do not relay for peers that cannot reach each other directly (they are told the server does not relay)")
	relaySessions := fs.Int("relay-max-sessions", transport.DefaultRelayMaxSessions, "relayed transfers at once")
	relayPerIP := fs.Int("relay-max-sessions-per-ip", transport.DefaultRelayMaxSessionsPerAddr, "relayed transfers one client address (IPv6: /64) may hold; -1 for no limit")
	redisURL := fs.String("redis", "", "`redis://HOST:PORT/DB` to keep nameplates and mailboxes in, shared by every rendezvous server given the same URL (default: in this process's memory)")
	advertise := fs.String("advertise", "", "this server's own public `HOST:PORT`, for relayed transfers when several servers behind one name share --redis (the pair meets on the sender's server)")
	relayRate := fs.Float64("relay-rate", float64(transport.DefaultRelaySessionRate)/(1<<20), "`MiB/s` one relayed transfer may use; -1 for no limit")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "ferry rendezvous: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *advertise != "" {
		if err := code.ValidateRendezvous(*advertise); err != nil {
			fmt.Fprintf(stderr, "ferry rendezvous: --advertise: %v\n", err)
			return exitUsage
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("rendezvous server starting", "listen", *listen, "relay", !*noRelay, "advertise", *advertise, "version", version)
	// With --no-relay the relay still answers relay hellos, with
	// RelayDisabled, so clients can say why there is no relayed path.
	rate := int64(*relayRate * (1 << 20))
	if *relayRate < 0 {
		rate = -1
	}
	relay := transport.NewRelayServer(transport.RelayConfig{Disabled: *noRelay, Logger: logger,
		MaxSessions: *relaySessions, MaxSessionsPerAddr: *relayPerIP, SessionRate: rate})
	defer relay.Close()
	cfg := mailbox.ServerConfig{Logger: logger, MaxNameplatesPerIP: *perIP, Advertise: *advertise}
	if *redisURL != "" {
		store, closeStore, err := openRedisStore(ctx, *redisURL, logger)
		if err != nil {
			fmt.Fprintf(stderr, "ferry rendezvous: --redis: %v\n", err)
			return exitUsage
		}
		defer closeStore()
		cfg.Store = store
	} else {
		logger.Info("rendezvous store: memory (use --redis to share with other servers)")
	}
	err := mailbox.ListenAndServe(ctx, *listen, cfg,
		mailbox.WithRelay(func(c net.Conn) { relay.ServeConn(ctx, c) }))
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ferry rendezvous: %v\n", err)
		return exitFailure
	}
	logger.Info("rendezvous server stopped")
	return exitOK
}
