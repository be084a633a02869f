package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"
)

// Conn is what the engine needs from a peer connection (*transport.Conn).
type Conn interface {
	OpenStream(ctx context.Context) (*quic.Stream, error)
	AcceptStream(ctx context.Context) (*quic.Stream, error)
}

// DefaultStreams is how many data streams carry chunks in parallel.
const DefaultStreams = 4

// Stats summarise one run of Send or Receive.
type Stats struct {
	Files int
	// Bytes is the total size of the transfer, including resumed data.
	Bytes int64
	// Moved is the raw chunk bytes sent or received this run.
	Moved int64
	// Skipped is what the receiver already held from an earlier run.
	Skipped int64
	// WireBytes counts payload bytes on the network this run (chunk payloads
	// after compression, plus control frames).
	WireBytes int64
	// Elapsed runs from the receiver's acceptance of the offer (time spent
	// pairing or deciding is not counted) to the end.
	Elapsed time.Duration
	// Text: a text of Bytes bytes was moved, not files.
	Text bool
}

// SendOptions configure Send.
type SendOptions struct {
	// Manifest is what is offered; when nil, Text is offered instead.
	Manifest *Manifest
	// Text is the text offered when there is no Manifest (see CheckText).
	Text string
	// Sources are the on-disk files, parallel to Manifest.Files.
	Sources []string
	Streams int
	Sink    Sink
	// Reconnect, when set, is called after the connection is lost
	// mid-transfer; the transfer then resumes on the connection it returns.
	Reconnect Reconnector
	// Logger, when set, hears the engine's decisions at debug level (the
	// compression gate's measurements).
	Logger *slog.Logger
}

// streamError codes on the QUIC streams.
const (
	codeCanceled quic.StreamErrorCode = 1
)

// Send offers the manifest on conn and sends what the receiver asks for,
// until it reports every file verified and in place. A lost connection is
// replaced through opts.Reconnect and the transfer resumes where the
// receiver stands.
func Send(ctx context.Context, conn Conn, opts SendOptions) (Stats, error) {
	m := opts.Manifest
	if m == nil {
		return sendText(ctx, conn, opts.Text, safeSink(opts.Sink))
	}
	if len(opts.Sources) != len(m.Files) {
		return Stats{}, errors.New("transfer: sources do not match the manifest")
	}
	if opts.Streams <= 0 {
		opts.Streams = DefaultStreams
	}
	emit := safeSink(opts.Sink)
	opts.Sink = emit
	body, err := MarshalManifest(m)
	if err != nil {
		return Stats{}, err
	}
	hello := append([]byte{protocolVersion}, body...)
	comp := newFileCompressibility(len(m.Files))
	var accepted time.Time // set by the first attempt that is accepted
	total := Stats{Files: m.FileCount(), Bytes: m.TotalSize()}
	for attempt := 0; ; attempt++ {
		st, err := sendOnce(ctx, conn, opts, hello, comp, attempt, &accepted)
		total.Moved += st.Moved
		total.WireBytes += st.WireBytes
		if attempt == 0 {
			total.Skipped = st.Skipped
		}
		if err == nil {
			total.Elapsed = time.Since(accepted)
			return total, nil
		}
		if !mayReconnect(opts.Reconnect, err) {
			return Stats{}, err
		}
		if conn, err = reconnect(ctx, opts.Reconnect, emit); err != nil {
			return Stats{}, err
		}
	}
}

// sendOnce runs the protocol once on conn: offer, accept, chunks, until
// DONE. Its stats count what this attempt moved, also when it fails.
func sendOnce(ctx context.Context, conn Conn, opts SendOptions, hello []byte, comp *fileCompressibility, attempt int, accepted *time.Time) (Stats, error) {
	m := opts.Manifest
	emit := opts.Sink
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wire atomic.Int64
	stats := func() Stats { return Stats{WireBytes: wire.Load()} }

	ctl, err := conn.OpenStream(ctx)
	if err != nil {
		return stats(), peerGone(err)
	}
	defer ctl.CancelRead(codeCanceled)
	defer cancelWithContext(ctx, ctl)()
	// Every control frame the sender writes counts in wire_bytes, as the
	// receiver counts every one it reads, so both sides agree.
	out := countingWriter{w: ctl, n: &wire}
	if err := writeControl(out, frameHello, hello); err != nil {
		return stats(), peerGone(err)
	}
	if attempt == 0 {
		emit(Event{Kind: EventState, State: StateOffered})
	}

	f, err := readAnswer(ctl)
	if err != nil {
		return stats(), err
	}
	var acc acceptMsg
	if err := json.Unmarshal(f.payload, &acc); err != nil {
		return stats(), fmt.Errorf("transfer: bad accept message: %w", err)
	}
	if accepted.IsZero() {
		*accepted = time.Now()
	}

	s := &sender{conn: conn, m: m, sources: opts.Sources, streams: opts.Streams, wire: &wire, comp: comp, gate: newCompressGate(time.Now(), opts.Logger)}
	var jobs []chunkRef
	var skipped int64
	for i := range m.Files {
		fe := &m.Files[i]
		have := acc.Have[i]
		for c := range fe.ChunkCount(m.ChunkSize) {
			if bitmapHas(have, c) {
				skipped += int64(fe.ChunkLen(c, m.ChunkSize))
				continue
			}
			jobs = append(jobs, chunkRef{i, c})
		}
	}
	if skipped > 0 && attempt == 0 {
		emit(Event{Kind: EventResumed, SkippedBytes: skipped})
	}
	emit(Event{Kind: EventState, State: StateSending})
	prog := newProgress(emit, m.TotalSize(), skipped)
	prog.start(ctx)
	defer prog.stop()
	s.prog = prog
	stats = func() Stats { return Stats{Moved: prog.moved.Load(), Skipped: skipped, WireBytes: wire.Load()} }

	// The receiver's control frames arrive while data flows. The end of the
	// stream comes through the same channel, closed after the last frame,
	// so a DONE that arrives together with the receiver's hang-up is seen
	// first (with the end on a channel of its own, the select below took
	// either, and a finished transfer could end in "connection lost").
	ctlFrames := make(chan controlFrame, 8)
	var ctlErr error // why ctlFrames was closed: set before the close; nil when ctx ended
	go func() {
		defer close(ctlFrames)
		for {
			f, err := readControl(ctl)
			if err != nil {
				ctlErr = err
				return
			}
			select {
			case ctlFrames <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	ctlEnded := func() error {
		if ctlErr == nil {
			return ctx.Err()
		}
		return peerGone(ctlErr)
	}

	resends := 0
	for {
		if len(jobs) > 0 {
			if err := s.sendChunks(ctx, jobs); err != nil {
				// A receiver that stops (a full disk) says why on the
				// control stream while its data streams fail under us.
				select {
				case f, ok := <-ctlFrames:
					if ok && f.typ == frameError {
						return stats(), peerError(f.payload)
					}
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
				return stats(), err
			}
			jobs = nil
		}
		if err := writeControlJSON(out, frameSent, sentMsg{Streams: int(s.opened.Load())}); err != nil {
			return stats(), peerGone(err)
		}
		select {
		case f, ok := <-ctlFrames:
			if !ok {
				return stats(), ctlEnded()
			}
			switch f.typ {
			case frameDone:
				prog.finish()
				_ = ctl.Close()
				return stats(), nil
			case frameNeed:
				var n needMsg
				if err := json.Unmarshal(f.payload, &n); err != nil {
					return stats(), fmt.Errorf("transfer: bad need message: %w", err)
				}
				if resends++; resends > maxResends {
					return stats(), Errorf(KindInternal, "make sure the files are not being changed while sending, then try again", "chunks still failed verification after %d attempts", maxResends)
				}
				for fi, cs := range n.Need {
					for _, c := range cs {
						if fi < 0 || fi >= len(m.Files) || c < 0 || c >= m.Files[fi].ChunkCount(m.ChunkSize) {
							return stats(), fmt.Errorf("transfer: receiver asked for unknown chunk %d of file %d", c, fi)
						}
						jobs = append(jobs, chunkRef{fi, c})
					}
				}
			case frameError:
				return stats(), peerError(f.payload)
			default:
				return stats(), fmt.Errorf("transfer: unexpected control frame %d", f.typ)
			}
		case <-ctx.Done():
			return stats(), ctx.Err()
		}
	}
}

// readAnswer reads the receiver's answer to the offer: the ACCEPT frame,
// or an error for a DECLINE, an ERROR or anything else.
func readAnswer(ctl io.Reader) (controlFrame, error) {
	f, err := readControl(ctl)
	if err != nil {
		return f, peerGone(err)
	}
	switch f.typ {
	case frameAccept:
		return f, nil
	case frameDecline:
		var d declineMsg
		_ = json.Unmarshal(f.payload, &d)
		return f, Errorf(KindDeclined, "", "the receiver declined the transfer%s", reasonSuffix(cleanPeerText(d.Reason)))
	case frameError:
		return f, peerError(f.payload)
	}
	return f, fmt.Errorf("transfer: unexpected control frame %d before accept", f.typ)
}

// maxResends bounds NEED rounds: a chunk that keeps failing verification
// means the source changed under us.
const maxResends = 3

type chunkRef struct{ file, chunk int }

type sender struct {
	conn    Conn
	m       *Manifest
	sources []string
	streams int
	wire    *atomic.Int64
	comp    *fileCompressibility
	gate    *compressGate
	prog    *progress
	opened  atomic.Int32 // data streams opened so far
}

// sendChunks writes jobs over up to s.streams new data streams, each fed
// from one shared queue, so a slow stream does not hold back the others.
func (s *sender) sendChunks(ctx context.Context, jobs []chunkRef) error {
	queue := make(chan chunkRef, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	n := min(s.streams, len(jobs))
	errc := make(chan error, n)
	var wg sync.WaitGroup
	gctx, stop := context.WithCancel(ctx)
	gateDone := make(chan struct{})
	go func() { defer close(gateDone); s.gate.run(gctx) }()
	defer func() { stop(); <-gateDone }()
	for range n {
		wg.Go(func() { errc <- s.worker(ctx, queue) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *sender) worker(ctx context.Context, queue <-chan chunkRef) error {
	st, err := s.conn.OpenStream(ctx)
	if err != nil {
		return peerGone(err)
	}
	s.opened.Add(1)
	st.CancelRead(codeCanceled)
	// A Write blocked on flow control would otherwise wait for a dead
	// peer until the idle timeout.
	defer cancelWithContext(ctx, st)()
	comp, err := newCompressor(s.comp, s.gate)
	if err != nil {
		return err
	}
	defer comp.close()
	files := newFileCache()
	defer files.close()
	buf := make([]byte, s.m.ChunkSize)
	frame := make([]byte, chunkHeaderLen)
	for ref := range queue {
		if err := ctx.Err(); err != nil {
			st.CancelWrite(codeCanceled)
			return err
		}
		fe := &s.m.Files[ref.file]
		n := fe.ChunkLen(ref.chunk, s.m.ChunkSize)
		f, err := files.open(s.sources[ref.file])
		if err != nil {
			st.CancelWrite(codeCanceled)
			return Errorf(KindNotFound, "", "read %s: %w", s.sources[ref.file], err)
		}
		raw := buf[:n]
		if k, err := f.ReadAt(raw, int64(ref.chunk)*s.m.ChunkSize); k != n {
			st.CancelWrite(codeCanceled)
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("the file shrank since it was offered")
			}
			return Errorf(KindInternal, "make sure the file is not being changed while sending", "read %s: %w", s.sources[ref.file], err)
		}
		t0 := time.Now()
		payload, zipped := comp.compress(ref.file, ref.chunk, raw)
		t1 := time.Now()
		h := chunkHeader{file: uint32(ref.file), chunk: uint32(ref.chunk), rawLen: uint32(n), payloadLen: uint32(len(payload))}
		if zipped {
			h.flags = flagZstd
		}
		h.put(frame)
		if _, err := st.Write(frame); err != nil {
			return peerGone(err)
		}
		if _, err := st.Write(payload); err != nil {
			return peerGone(err)
		}
		s.wire.Add(int64(len(payload) + chunkHeaderLen))
		s.gate.count(n, zipped, t1.Sub(t0), time.Since(t1))
		s.prog.add(int64(n), fe.Path)
	}
	return st.Close()
}

// fileCache keeps a worker's source files open while it reads their chunks.
type fileCache struct {
	open_ map[string]*os.File
}

func newFileCache() *fileCache { return &fileCache{open_: map[string]*os.File{}} }

func (c *fileCache) open(path string) (*os.File, error) {
	if f, ok := c.open_[path]; ok {
		return f, nil
	}
	if len(c.open_) >= 16 {
		c.close()
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	c.open_[path] = f
	return f, nil
}

func (c *fileCache) close() {
	for p, f := range c.open_ {
		f.Close()
		delete(c.open_, p)
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// peerError turns a peer's ERROR frame into an *Error of its kind. The
// peer's words are shown to the user, so they are cleaned first.
func peerError(payload []byte) error {
	var e errorMsg
	if err := json.Unmarshal(payload, &e); err != nil || e.Kind == "" {
		return Errorf(KindPeerGone, "", "the other side stopped with an unreadable error")
	}
	kind := e.Kind
	if !knownKinds[kind] {
		kind = KindInternal
	}
	return Errorf(kind, "", "the other side stopped: %s", cleanPeerText(e.Message))
}

// knownKinds are the error kinds a peer may report.
var knownKinds = map[ErrorKind]bool{
	KindCodeMismatch: true, KindDeclined: true, KindPeerGone: true, KindDiskFull: true,
	KindBadPath: true, KindTimeout: true, KindNotFound: true, KindTampered: true,
	KindNoPath: true, KindCanceled: true, KindInternal: true,
}

// maxPeerText bounds text from the peer shown to the user.
const maxPeerText = 300

// cleanPeerText drops control characters (no terminal escapes from a
// hostile peer) and bounds the length.
func cleanPeerText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	if len(s) > maxPeerText {
		s = s[:maxPeerText] + "..."
	}
	return strings.ToValidUTF8(s, "")
}

// peerGone classifies a stream or connection failure.
func peerGone(err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{Kind: KindPeerGone, Err: fmt.Errorf("connection to the other side lost: %w", err), Hint: "run the same command again to resume"}
}
