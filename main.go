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
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"syscall"
	"time"

	"fyne.io/fyne/v2/app"
	"github.com/redis/go-redis/v9"

	"ferry/assets"
	"ferry/discovery"
	"ferry/discovery/code"
	"ferry/discovery/mailbox"
	"ferry/discovery/rendezvous"
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
                   [--metrics HOST:PORT] [--drain 30s] [--stun-alt-port N]
                                          run a rendezvous server: mailbox and relay
                                          (TCP) and STUN (UDP) on one port (default
                                          :7887; --max-nameplates-per-ip N), and STUN
                                          on the port above too (for netcheck); with
                                          --redis, servers sharing one Redis act as one,
                                          each --advertise-ing its own address for
                                          relaying; --metrics serves Prometheus metrics
                                          at /metrics; on SIGTERM or Ctrl-C it drains:
                                          refuses new connections, sends mailbox
                                          clients elsewhere, lets relayed transfers
                                          finish for up to --drain (a second signal
                                          ends at once)
  ferry netcheck [--rendezvous HOST:PORT] [--json]
                                          check what this network allows: UDP, the
                                          NAT's behaviour, TCP, port mapping, relay
  ferry version                           print the version and exit
  ferry help                              show this help

Run "ferry send -h" or "ferry receive -h" for all flags. Without
--rendezvous (or FERRY_RENDEZVOUS) the two sides pair on the local network.
With one, a transfer that finds no direct path is relayed through it
(--no-relay: direct or nothing; --relay-only: always through the relay).
`

func main() {
	stop := startCPUProfile(os.Getenv(cpuProfileEnv), os.Stderr)
	stopTrace := startTrace(os.Getenv(traceEnv), os.Stderr)
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stopTrace()
	stop()
	os.Exit(code)
}

// cpuProfileEnv names a file to write a CPU profile of this process to, for
// developers measuring where the time goes (docs/BENCHMARKS.md): the
// profile covers the whole run and is written when the command returns.
const cpuProfileEnv = "FERRY_CPUPROFILE"

// startCPUProfile starts profiling into path (nothing when it is empty) and
// returns the function that stops it and writes the file.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	return startToFile(cpuProfileEnv, path, stderr, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// traceEnv names a file to write an execution trace of this process to
// (runtime/trace), for developers looking at what both sides of a transfer
// wait for: when the cores idle, and which goroutines block in which
// system calls (docs/BENCHMARKS.md, "The journal's fsyncs"). Read it with
// go tool trace.
const traceEnv = "FERRY_TRACE"

// startTrace starts tracing into path (nothing when it is empty) and
// returns the function that stops it and closes the file.
func startTrace(path string, stderr io.Writer) (stop func()) {
	return startToFile(traceEnv, path, stderr, trace.Start, trace.Stop)
}

// startToFile creates path and starts a recorder (a profile, a trace) into
// it, reporting problems under the name of its environment variable env
// and going on without it; nothing when path is empty. It returns the
// function that stops the recorder and closes the file.
func startToFile(env, path string, stderr io.Writer, start func(io.Writer) error, stopRec func()) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %s: %v\n", env, err)
		return func() {}
	}
	if err := start(f); err != nil {
		fmt.Fprintf(stderr, "ferry: %s: %v\n", env, err)
		f.Close()
		return func() {}
	}
	return func() {
		stopRec()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "ferry: %s: %v\n", env, err)
		}
	}
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
	case "netcheck":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		env := cli.OSEnv()
		env.Stdout, env.Stderr = stdout, stderr
		return cli.Netcheck(ctx, args[1:], env, cli.NetcheckOptions{PortMap: discovery.PortMapCheck})
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

// defaultDrain is how long `ferry rendezvous` lets relayed transfers go on
// after SIGTERM: a stop or a rolling restart must not wait on a large
// transfer for long, and clients whose relay session is closed rejoin
// another server by themselves.
const defaultDrain = 30 * time.Second

// signalContexts returns stop, done at the first SIGINT or SIGTERM, and
// hurry, done at the second; release stops listening for them.
func signalContexts() (stop, hurry context.Context, release func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stop, stopNow := context.WithCancel(context.Background())
	hurry, hurryNow := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		for _, cancel := range []context.CancelFunc{stopNow, hurryNow} {
			select {
			case <-sigs:
				cancel()
			case <-done:
				return
			}
		}
	}()
	return stop, hurry, func() {
		signal.Stop(sigs)
		close(done)
		stopNow()
		hurryNow()
	}
}

// serveMetrics serves m on addr until ctx is done. It fails only if addr
// cannot be listened on.
func serveMetrics(ctx context.Context, m *rendezvous.Metrics, addr string, logger *slog.Logger) (wait func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	logger.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Serve(ctx, ln); err != nil {
			logger.Error("metrics server failed", "err", err)
		}
	}()
	return func() { <-done }, nil
}

// listenSTUNAlt opens the second STUN port on pc's address: port, or with
// 0 the one above pc's (any free one when pc's was picked by the system,
// as in tests), or none with a negative port.
func listenSTUNAlt(pc net.PacketConn, port int) (net.PacketConn, error) {
	if port < 0 {
		return nil, nil
	}
	ua := pc.LocalAddr().(*net.UDPAddr)
	if port == 0 {
		port = ua.Port + 1
		if ua.Port == 0 || ua.Port == 65535 {
			port = 0
		}
	}
	if port > 65535 {
		return nil, fmt.Errorf("port %d out of range", port)
	}
	return net.ListenPacket("udp", net.JoinHostPort(ua.IP.String(), strconv.Itoa(port)))
}

// runRendezvous serves the mailbox, the relay (unless --no-relay) and STUN
// until interrupted, then drains (see --drain).
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
	stunAlt := fs.Int("stun-alt-port", 0, "second UDP `PORT` answering STUN, for clients checking their NAT (ferry netcheck); 0: the listen port + 1, -1: none")
	metricsAddr := fs.String("metrics", "", "`HOST:PORT` to serve Prometheus metrics on, at /metrics only (default: none); keep it off the internet")
	drain := fs.Duration("drain", defaultDrain, "on SIGTERM or SIGINT, how long relayed transfers in progress may go on before they are closed, while new connections are refused and mailbox clients told to reconnect elsewhere; 0 stops at once")
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
	ctx, hurry, releaseSignals := signalContexts()
	defer releaseSignals()
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
	cfg := mailbox.ServerConfig{Logger: logger, MaxNameplatesPerIP: *perIP, Advertise: *advertise, Store: mailbox.NewMemStore()}
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
	ln, pc, err := mailbox.Listen(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "ferry rendezvous: %v\n", err)
		return exitFailure
	}
	var listenOpts []mailbox.ListenOption
	if altPC, err := listenSTUNAlt(pc, *stunAlt); err != nil {
		if *stunAlt > 0 {
			ln.Close()
			pc.Close()
			fmt.Fprintf(stderr, "ferry rendezvous: --stun-alt-port: %v\n", err)
			return exitFailure
		}
		logger.Warn("no second STUN port: netcheck cannot tell clients how their NAT maps", "err", err)
	} else if altPC != nil {
		cfg.STUNAltPort = altPC.LocalAddr().(*net.UDPAddr).Port
		listenOpts = append(listenOpts, mailbox.WithSTUNAlt(altPC))
	}
	var metrics *rendezvous.Metrics
	if *metricsAddr != "" {
		metrics = rendezvous.NewMetrics()
		cfg.Store = metrics.InstrumentStore(cfg.Store)
	}
	srv := mailbox.NewServer(cfg)
	if metrics != nil {
		metrics.WatchServer(srv)
		metrics.WatchRelay(relay)
		// Up until the drain is over, so that it can be watched.
		mctx, stopMetrics := context.WithCancel(context.Background())
		waitMetrics, err := serveMetrics(mctx, metrics, *metricsAddr, logger)
		if err != nil {
			stopMetrics()
			fmt.Fprintf(stderr, "ferry rendezvous: --metrics: %v\n", err)
			return exitFailure
		}
		defer waitMetrics()
		defer stopMetrics()
	}
	listenOpts = append(listenOpts, mailbox.WithRelayServer(relay), mailbox.WithDrain(*drain, hurry))
	err = srv.ServeAll(ctx, ln, pc, listenOpts...)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ferry rendezvous: %v\n", err)
		return exitFailure
	}
	logger.Info("rendezvous server stopped")
	return exitOK
}
