package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"ferry/discovery"
	"ferry/discovery/code"
	"ferry/discovery/mailbox"
	"ferry/transport"
)

// Config says how a session finds the other side. The zero value pairs on
// the local network only.
type Config struct {
	// Rendezvous is the mailbox server, "host:port"; its UDP port (the same
	// number) also answers STUN. Empty: LAN pairing only.
	Rendezvous string
	// NoLAN turns LAN pairing off.
	NoLAN bool
	// STUNServers are extra STUN servers the user configured ("host:port").
	// ferry contacts no third-party server unless listed here.
	STUNServers []string
	// ListenAddr is the transfer socket's UDP address; default all
	// interfaces, any port.
	ListenAddr string
	// Streams is the number of parallel data streams; default DefaultStreams.
	Streams int
	// ChunkSize for sending; default DefaultChunkSize.
	ChunkSize int64
	// Paths says which kinds of path the connection may take: any (the
	// default: direct, or relayed through the rendezvous server when no
	// direct path comes up, moving to a direct one when it does), direct
	// only (--no-relay), or relay only (--relay-only).
	Paths transport.PathPolicy
	// NoPortMap keeps the router out of it: by default the session asks
	// the default gateway (on a private network only) to map its UDP port
	// with PCP, NAT-PMP or UPnP IGD, offers the mapped address as a
	// candidate and deletes the mapping at the end.
	NoPortMap bool
	// FollowLinks sends what symbolic links inside folders point to
	// (BuildOptions.FollowLinks); by default they are left out.
	FollowLinks bool
	// ConnectTimeout bounds finding a path after pairing; default 30 s.
	ConnectTimeout time.Duration
	// ReconnectTimeout bounds waiting for the peer after the connection is
	// lost mid-transfer (a network outage longer than the transport's idle
	// timeout, a laptop asleep); the transfer then resumes by itself.
	// Default DefaultReconnectTimeout; negative turns reconnecting off.
	ReconnectTimeout time.Duration
	Logger           *slog.Logger
	// Transport tunes the transport (tests); ListenAddr and Logger are
	// filled in from this Config.
	Transport transport.Config
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 30 * time.Second
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.ReconnectTimeout == 0 {
		c.ReconnectTimeout = DefaultReconnectTimeout
	}
	return c
}

// DefaultReconnectTimeout is how long a session waits for a lost peer to
// come back before it gives up (the partial data stays for a rerun).
const DefaultReconnectTimeout = 2 * time.Minute

func (c Config) discovery() discovery.Config {
	return discovery.Config{Rendezvous: c.Rendezvous, NoLAN: c.NoLAN, Logger: c.Logger}
}

// peer is an open socket and certificate for one session.
type peer struct {
	cfg     Config
	sock    *transport.Socket
	cert    *transport.Certificate
	emit    Sink
	portmap portMapper
}

func openPeer(cfg Config, emit Sink) (*peer, error) {
	tc := cfg.Transport
	tc.ListenAddr = cfg.ListenAddr
	tc.Logger = cfg.Logger
	sock, err := transport.NewSocket(tc)
	if err != nil {
		return nil, Errorf(KindInternal, "check --listen", "open the transfer socket: %w", err)
	}
	cert, err := transport.NewCertificate()
	if err != nil {
		sock.Close()
		return nil, err
	}
	p := &peer{cfg: cfg, sock: sock, cert: cert, emit: emit}
	p.portmap.log = cfg.Logger
	p.portmap.changed = sock.CandidatesChanged
	sock.SetGatherer(p.announced)
	return p, nil
}

// meetTimeout bounds one meeting at the rendezvous mailbox after a change:
// the peer notices the silence within seconds, and a peer that does not
// come by then is asleep (the reconnect window takes over).
const meetTimeout = 30 * time.Second

// reconnectRound is how long one round of reconnecting tries the peer's
// candidates before it starts over with what a meeting learned since.
const reconnectRound = 15 * time.Second

// announced lists this side's candidates for the transport to announce to
// the peer after a network change: the same gathering as for the offer.
func (p *peer) announced(ctx context.Context) []transport.Announced {
	udp, tcp, types := p.candidates(ctx)
	out := make([]transport.Announced, 0, len(udp)+len(tcp))
	for _, a := range udp {
		out = append(out, transport.Announced{Addr: a, Type: types[a]})
	}
	for _, a := range tcp {
		out = append(out, transport.Announced{Addr: a, TCP: true, Type: types[a]})
	}
	return out
}

func (p *peer) close() {
	p.portmap.close()
	p.sock.Close()
}

// candidates lists where the peer may reach this side, for the offer
// (discovery.GatherCandidates).
// The router's port mapping of the socket, when it has one, comes first.
func (p *peer) candidates(ctx context.Context) (udp, tcp []netip.AddrPort, types map[netip.AddrPort]transport.CandidateType) {
	relayOnly := p.cfg.Paths == transport.RelayOnly
	type mapping struct {
		addr netip.AddrPort
		ok   bool
	}
	mapped := make(chan mapping, 1)
	if relayOnly || p.cfg.NoPortMap {
		mapped <- mapping{}
	} else {
		go func() {
			a, ok := p.portmap.mapped(ctx, p.sock)
			mapped <- mapping{a, ok}
		}()
	}
	udp, tcp, types = discovery.GatherCandidates(ctx, p.sock, discovery.GatherOptions{
		Rendezvous:  p.cfg.Rendezvous,
		STUNServers: p.cfg.STUNServers,
		RelayOnly:   relayOnly,
		Logger:      p.cfg.Logger,
	})
	if m := <-mapped; m.ok && !slices.Contains(udp, m.addr) {
		udp = append([]netip.AddrPort{m.addr}, udp...)
		types[m.addr] = transport.CandidatePortMapped
	}
	return udp, tcp, types
}

// tamperedPeer classifies a peer whose certificate does not match the one
// pinned by pairing.
func tamperedPeer(err error) error {
	return &Error{Kind: KindTampered, Err: err, Hint: "someone may be interfering; pair again with a new code"}
}

// transportPeer is what the transport needs to know of the paired peer.
// The relay is the configured rendezvous server unless pairing named the
// sender's server's own (several servers behind one name).
func (p *peer) transportPeer(res *discovery.Result) transport.Peer {
	relay := p.cfg.Rendezvous
	if res.Relay != "" {
		relay = res.Relay
	}
	return transport.Peer{
		Role:            res.TransportRole(),
		Key:             res.TransportKey,
		Certificate:     p.cert,
		PeerFingerprint: res.PeerFingerprint,
		Candidates:      res.PeerCandidates,
		Relay:           relay,
		Paths:           p.cfg.Paths,
		TCPCandidates:   res.PeerTCPCandidates,
		CandidateTypes:  res.PeerCandidateTypes,
	}
}

// link is a session's connection to its paired peer: the current
// transport connection, replaced when it is lost.
type link struct {
	p   *peer
	wg  *sync.WaitGroup // owns the path followers and meetings
	ctx context.Context // the session's

	mu      sync.Mutex
	peer    transport.Peer // updated by meetings
	conn    *transport.Conn
	meeting bool                  // a meetAgain runs
	meetOwn []transport.Announced // this side's newest candidates, for the next meeting
}

// connect runs the transport handshake with the paired peer and reports
// the path, then follows path changes until ctx ends or the connection
// closes.
func (p *peer) connect(ctx context.Context, tp transport.Peer, wg *sync.WaitGroup) (*link, error) {
	l := &link{p: p, wg: wg, peer: tp, ctx: ctx}
	p.emit(Event{Kind: EventState, State: StateConnecting})
	cctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	conn, err := p.sock.Connect(cctx, l.peer)
	if err != nil {
		if errors.Is(err, transport.ErrNoPath) {
			return nil, &Error{Kind: KindNoPath, Err: err, Hint: "the two computers could not reach each other; try a rendezvous server both can reach (--rendezvous)"}
		}
		if errors.Is(err, transport.ErrPeerCertificate) {
			return nil, tamperedPeer(err)
		}
		return nil, peerGone(err)
	}
	info := conn.Path()
	p.emit(Event{Kind: EventConnected, Path: pathLabel(info), Peer: info.Remote.String()})
	l.use(ctx, conn)
	p.sock.SetGatherer(l.gathered)
	return l, nil
}

// gathered is the socket's Gatherer while the link is up: this side's
// candidates, which the transport announces to the peer through the
// active path or the relay. When no relay session can carry them (the
// user said --no-relay, or the server relays nothing), both sides also
// meet at the rendezvous mailbox (meetAgain).
func (l *link) gathered(ctx context.Context) []transport.Announced {
	own := l.p.announced(ctx)
	if ctx.Err() != nil {
		return own // abandoned for a newer gathering: nothing to tell
	}
	l.mu.Lock()
	tp := l.peer
	need := tp.Paths != transport.RelayOnly && l.p.cfg.Rendezvous != "" && (tp.Paths == transport.DirectOnly || !l.conn.RelayJoined())
	start := need && !l.meeting
	if need {
		l.meetOwn = own
		l.meeting = true
	}
	l.mu.Unlock()
	if start {
		l.wg.Go(l.meetAgain)
	}
	return own
}

// meetAgain leaves this side's newest candidates at the rendezvous mailbox
// for the peer, takes the peer's from there, and hands them to the
// connection (and to later reconnects); again if a newer gathering came
// meanwhile.
func (l *link) meetAgain() {
	for {
		l.mu.Lock()
		own, tp := l.meetOwn, l.peer
		l.meetOwn = nil
		if own == nil {
			l.meeting = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		l.meetOnce(tp, own)
	}
}

// meetOnce is one meeting of meetAgain.
func (l *link) meetOnce(tp transport.Peer, own []transport.Announced) {
	ctx, cancel := context.WithTimeout(l.ctx, meetTimeout)
	defer cancel()
	cands, err := discovery.MeetAgain(ctx, l.p.cfg.Rendezvous, tp.Key, tp.Role, own)
	if err != nil {
		l.p.cfg.Logger.Info("could not meet the peer at the rendezvous server", "err", err)
		return
	}
	l.p.cfg.Logger.Info("met the peer at the rendezvous server", "candidates", len(cands))
	l.mu.Lock()
	l.peer.Candidates, l.peer.TCPCandidates, l.peer.CandidateTypes = transport.SplitAnnounced(cands)
	conn := l.conn
	l.mu.Unlock()
	conn.UpdatePeerCandidates(cands)
}

// use makes conn the link's connection and follows its path changes.
func (l *link) use(ctx context.Context, conn *transport.Conn) {
	l.mu.Lock()
	l.conn = conn
	l.mu.Unlock()
	sub, stop := conn.SubscribePath()
	l.wg.Go(func() {
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case info, ok := <-sub:
				if !ok {
					return
				}
				l.p.emit(Event{Kind: EventPath, Path: pathLabel(info), Peer: info.Remote.String(), Reason: pathReason(info.Reason)})
			}
		}
	})
}

// current is the link's connection now.
func (l *link) current() *transport.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn
}

// close closes the current connection.
func (l *link) close() {
	c := l.current()
	// What quic-go counted: lost packets on a path that loses nothing
	// were dropped by the peer's quic-go (transport.Stats).
	st := c.Stats()
	l.p.cfg.Logger.Debug("connection closed", "quic_packets_sent", st.QUICPacketsSent, "quic_packets_received", st.QUICPacketsReceived,
		"quic_packets_lost", st.QUICPacketsLost, "datagrams_in", st.QUICPacketsIn, "queue_drops", st.QueueDrops,
		"quic_queue_waits", st.QUICQueueWaits, "quic_queue_stalls", st.QUICQueueStalls)
	_ = c.Close()
}

// closeWithError closes the current connection, telling the peer why.
func (l *link) closeWithError(code uint64, reason string) {
	_ = l.current().CloseWithError(code, reason)
}

// reconnector returns the engine's Reconnector for this link, or nil when
// reconnecting is off. ctx is the session's: path followers end with it.
func (l *link) reconnector(ctx context.Context) Reconnector {
	if l.p.cfg.ReconnectTimeout < 0 {
		return nil
	}
	return func(rctx context.Context) (Conn, error) {
		return l.reconnect(ctx, rctx)
	}
}

// reconnect closes the lost connection and connects to the same peer again
// (the same keys, certificates and candidates) through the transport's
// Reconnect, for up to ReconnectTimeout. The new path is reported with
// reason "reconnected".
func (l *link) reconnect(ctx, rctx context.Context) (*transport.Conn, error) {
	l.close()
	l.p.cfg.Logger.Info("connection lost; reconnecting", "timeout", l.p.cfg.ReconnectTimeout)
	rctx, cancel := context.WithTimeout(rctx, l.p.cfg.ReconnectTimeout)
	defer cancel()
	var conn *transport.Conn
	var err error
	for {
		// In rounds, each with the peer's newest candidates: a meeting at
		// the rendezvous mailbox may learn where the peer went meanwhile.
		l.mu.Lock()
		tp := l.peer
		l.mu.Unlock()
		round, endRound := context.WithTimeout(rctx, reconnectRound)
		conn, err = l.p.sock.Reconnect(round, tp)
		endRound()
		if err == nil || rctx.Err() != nil || errors.Is(err, transport.ErrPeerCertificate) || errors.Is(err, transport.ErrClosed) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, transport.ErrPeerCertificate) {
			return nil, tamperedPeer(err)
		}
		return nil, fmt.Errorf("no answer within %v: %w", l.p.cfg.ReconnectTimeout, err)
	}
	info := conn.Path()
	l.p.emit(Event{Kind: EventPath, Path: pathLabel(info), Peer: info.Remote.String(), Reason: "reconnected"})
	l.use(ctx, conn)
	return conn, nil
}

func pathLabel(info transport.PathInfo) PathLabel {
	switch info.Kind {
	case transport.PathDirectTCP:
		return PathDirectTCP
	case transport.PathRelay:
		return PathRelay
	}
	if info.IsLocalNetwork() {
		return PathLAN
	}
	return PathDirectUDP
}

// pathReason maps the transport's reasons onto the CLI contract's.
func pathReason(r transport.PathChangeReason) string {
	switch r {
	case transport.ReasonRebound, transport.ReasonPeerMoved, transport.ReasonMigrated, transport.ReasonRelayRejoined:
		return "migrated"
	}
	return string(r)
}

// pairingError classifies what discovery returns.
func pairingError(err error) error {
	switch {
	case errors.Is(err, discovery.ErrCodeMismatch):
		return &Error{Kind: KindCodeMismatch, Err: err}
	case errors.Is(err, discovery.ErrTampered):
		return &Error{Kind: KindTampered, Err: err, Hint: "pair again with a new code"}
	case errors.Is(err, mailbox.ErrNoSuchNameplate), errors.Is(err, discovery.ErrNoLANSender):
		return &Error{Kind: KindNoSuchCode, Err: errors.New("nobody is waiting under this code"), Hint: "check the code, or ask the sender to run ferry send again and read you the new code"}
	case errors.Is(err, mailbox.ErrCrowded):
		return &Error{Kind: KindCodeMismatch, Err: errors.New("someone else already used this code"), Hint: "ask the sender for a new code"}
	case mailbox.Retryable(err), errors.Is(err, mailbox.ErrClosed):
		return &Error{Kind: KindUnavailable, Err: err, Hint: "the rendezvous server went away or is restarting; run ferry again (a receiver can use the same code while the sender still waits; a sender gets a new code)"}
	}
	return err
}

// SendFiles sends paths: it hashes them, pairs (showing the code through
// EventCode), connects and transfers, reporting everything to sink.
func SendFiles(ctx context.Context, cfg Config, paths []string, sink Sink) (Stats, error) {
	return sendSession(ctx, cfg, sink, func(ctx context.Context, cfg Config, emit Sink, wg *sync.WaitGroup) func(*link) (Stats, error) {
		// Hashing runs while the code is read to the receiver.
		type built struct {
			m       *Manifest
			sources []string
			err     error
		}
		manifest := make(chan built, 1)
		emit(Event{Kind: EventState, State: StateHashing})
		wg.Go(func() {
			start := time.Now()
			m, src, skipped, err := BuildManifestWith(ctx, paths, BuildOptions{ChunkSize: cfg.ChunkSize, FollowLinks: cfg.FollowLinks})
			if err == nil {
				cfg.Logger.Debug("manifest ready", "files", m.FileCount(), "bytes", m.TotalSize(), "took", time.Since(start))
			}
			for _, s := range skipped {
				emit(Event{Kind: EventSkipped, File: s.Path, Reason: string(s.Reason)})
			}
			manifest <- built{m, src, err}
		})
		return func(l *link) (Stats, error) {
			b := <-manifest
			if b.err != nil {
				l.closeWithError(1, "the sender could not read its files")
				return Stats{}, b.err
			}
			return Send(ctx, l.current(), SendOptions{Manifest: b.m, Sources: b.sources, Streams: cfg.Streams, Sink: emit, Reconnect: l.reconnector(ctx), Logger: cfg.Logger})
		}
	})
}

// SendText sends text (see CheckText) as SendFiles sends files: it pairs
// (showing the code through EventCode), connects and offers the text,
// which the receiver takes as a text, not as a file.
func SendText(ctx context.Context, cfg Config, text string, sink Sink) (Stats, error) {
	if err := CheckText(text); err != nil {
		return Stats{}, &Error{Kind: KindInternal, Err: err}
	}
	return sendSession(ctx, cfg, sink, func(ctx context.Context, _ Config, emit Sink, _ *sync.WaitGroup) func(*link) (Stats, error) {
		return func(l *link) (Stats, error) {
			return Send(ctx, l.current(), SendOptions{Text: text, Sink: emit})
		}
	})
}

// sendSession is a sender's session. prepare starts what may run while the
// code is read to the receiver (on wg, ending with ctx) and returns the
// offer, which runs on the link once pairing and connecting
// (hostAndConnect) succeeded.
func sendSession(ctx context.Context, cfg Config, sink Sink, prepare func(ctx context.Context, cfg Config, emit Sink, wg *sync.WaitGroup) (offer func(*link) (Stats, error))) (Stats, error) {
	cfg = cfg.withDefaults()
	emit := safeSink(sink)
	// cancel runs before wg.Wait: the goroutines end with ctx.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	offer := prepare(ctx, cfg, emit, &wg)
	l, hangUp, err := hostAndConnect(ctx, cfg, emit, &wg)
	if err != nil {
		return Stats{}, err
	}
	defer hangUp()
	st, err := offer(l)
	return sessionDone(emit, st, err)
}

// hostAndConnect is the sender's side of pairing: it opens the socket,
// hosts a code (EventCode), pairs with whoever types it and connects.
// hangUp closes all of it. ctx must end before wg is waited for.
func hostAndConnect(ctx context.Context, cfg Config, emit Sink, wg *sync.WaitGroup) (l *link, hangUp func(), err error) {
	p, err := openPeer(cfg, emit)
	if err != nil {
		return nil, nil, err
	}
	var inv *discovery.Invitation
	defer func() {
		if err != nil {
			if inv != nil {
				inv.Close()
			}
			p.close()
		}
	}()
	cands, tcpCands, types := p.candidates(ctx)
	inv, err = discovery.Host(ctx, cfg.discovery())
	if err != nil {
		return nil, nil, pairingError(err)
	}
	emit(Event{Kind: EventCode, Code: inv.Code().String()})
	emit(Event{Kind: EventState, State: StateWaiting})
	res, err := inv.Pair(ctx, discovery.Offer{SessionID: uuid.New(), Fingerprint: p.cert.Fingerprint, Candidates: cands, TCPCandidates: tcpCands, CandidateTypes: types})
	if err != nil {
		return nil, nil, pairingError(err)
	}
	l, err = p.connect(ctx, p.transportPeer(res), wg)
	if err != nil {
		return nil, nil, err
	}
	return l, func() {
		l.close()
		inv.Close()
		p.close()
	}, nil
}

// sessionDone reports a session's end: EventDone when err is nil.
func sessionDone(emit Sink, st Stats, err error) (Stats, error) {
	if err != nil {
		return st, err
	}
	emit(Event{Kind: EventDone, Files: st.Files, Bytes: st.Bytes, Elapsed: st.Elapsed, WireBytes: st.WireBytes, IsText: st.Text})
	return st, nil
}

// ReceiveFiles pairs with the sender using the typed code, connects and
// receives into opts.OutDir, reporting to opts.Sink; a text offered
// instead arrives as EventText.
func ReceiveFiles(ctx context.Context, cfg Config, c code.Code, opts ReceiveOptions) (Stats, error) {
	cfg = cfg.withDefaults()
	emit := safeSink(opts.Sink)
	opts.Sink = emit
	// cancel runs before wg.Wait: the goroutines end with ctx.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p, err := openPeer(cfg, emit)
	if err != nil {
		return Stats{}, err
	}
	defer p.close()
	cands, tcpCands, types := p.candidates(ctx)
	emit(Event{Kind: EventState, State: StatePairing})
	res, err := discovery.Join(ctx, cfg.discovery(), c, discovery.Offer{Fingerprint: p.cert.Fingerprint, Candidates: cands, TCPCandidates: tcpCands, CandidateTypes: types})
	if err != nil {
		return Stats{}, pairingError(err)
	}
	l, err := p.connect(ctx, p.transportPeer(res), &wg)
	if err != nil {
		return Stats{}, err
	}
	defer l.close()
	opts.Reconnect = l.reconnector(ctx)
	st, err := Receive(ctx, l.current(), opts)
	return sessionDone(emit, st, err)
}

// String renders stats for logs.
func (s Stats) String() string {
	return fmt.Sprintf("%d files, %d bytes (%d moved, %d resumed, %d on the wire) in %v", s.Files, s.Bytes, s.Moved, s.Skipped, s.WireBytes, s.Elapsed.Round(time.Millisecond))
}
