package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// ReceiveOptions configure Receive.
type ReceiveOptions struct {
	// OutDir is where files are saved; it must exist. A text is never
	// saved.
	OutDir string
	// Overwrite replaces existing files instead of saving "name (1).ext".
	Overwrite bool
	// Accept decides on a file offer (after EventOffer); nil accepts.
	Accept func(ctx context.Context, m *Manifest) (bool, error)
	// AcceptText decides on the offer of a text of n bytes (after
	// EventOffer with IsText). When nil, a text is accepted if Accept is
	// nil too, and declined otherwise: a caller that asks about files
	// must say how it asks about texts.
	AcceptText func(ctx context.Context, n int64) (bool, error)
	// OutDirAfterAccept, when set, is asked for the folder once the offer
	// is accepted (the GUI lets the user change it in the offer dialog); an
	// empty answer keeps OutDir.
	OutDirAfterAccept func() string
	Sink              Sink
	Limits            Limits
	// Reconnect, when set, is called after the connection is lost
	// mid-transfer; the transfer then resumes on the connection it returns.
	Reconnect Reconnector
}

// freeSpaceMargin is kept free on the receiving disk beyond the transfer.
const freeSpaceMargin = 16 << 20

// Receive takes an offer on conn and, if accepted, receives every file into
// opts.OutDir: chunks are verified on arrival, written to resumable partial
// files, and each file is verified whole before it is moved into place. A
// lost connection is replaced through opts.Reconnect and the transfer
// resumes without asking the user again. A text offer is received through
// EventText instead, and nothing is written (text.go).
func Receive(ctx context.Context, conn Conn, opts ReceiveOptions) (Stats, error) {
	emit := safeSink(opts.Sink)
	opts.Sink = emit
	var wire atomic.Int64
	ctl, hello, err := readHello(ctx, conn, &wire)
	if err != nil {
		return Stats{}, err
	}
	if hello[0] == protocolText {
		return receiveText(ctx, ctl, hello[1:], opts, &wire)
	}
	r, err := takeOffer(ctx, ctl, hello, opts, &wire)
	if err != nil {
		return Stats{}, err
	}
	defer r.closePartials()
	if r.skipped > 0 {
		emit(Event{Kind: EventResumed, SkippedBytes: r.skipped})
	}
	for {
		err := r.attempt(ctx, conn)
		if err == nil {
			break
		}
		for mayReconnect(opts.Reconnect, err) {
			if conn, err = reconnect(ctx, opts.Reconnect, emit); err != nil {
				return Stats{}, err
			}
			err = r.retakeOffer(ctx, conn) // lost again before the offer: wait again
		}
		if err != nil {
			return Stats{}, err
		}
	}
	emit(Event{Kind: EventState, State: StateDone})
	return Stats{Files: r.m.FileCount(), Bytes: r.m.TotalSize(), Moved: r.moved, Skipped: r.skipped, WireBytes: wire.Load(), Elapsed: time.Since(r.accepted)}, nil
}

// readHello accepts the sender's control stream and reads its HELLO: the
// payload, whose first byte is a version this side understands.
func readHello(ctx context.Context, conn Conn, wire *atomic.Int64) (*quic.Stream, []byte, error) {
	ctl, err := conn.AcceptStream(ctx)
	if err != nil {
		return nil, nil, peerGone(err)
	}
	defer cancelWithContext(ctx, ctl)()
	f, err := readControl(ctl)
	if err != nil {
		return nil, nil, peerGone(err)
	}
	wire.Add(int64(len(f.payload)) + controlHeaderLen)
	if f.typ != frameHello || len(f.payload) < 1 {
		return nil, nil, fmt.Errorf("transfer: the sender did not start with an offer")
	}
	if v := f.payload[0]; v != protocolVersion && v != protocolText {
		err := Errorf(KindInternal, "use the same ferry version on both sides", "the sender speaks transfer protocol %d, this ferry speaks %d and %d", v, protocolVersion, protocolText)
		_ = writeControlJSON(ctl, frameError, errorMsg{Kind: KindInternal, Message: err.Error()})
		awaitHangup(ctl)
		return nil, nil, err
	}
	return ctl, f.payload, nil
}

// decide asks about the offer (ask nil accepts) and tells the sender when
// the answer is no or cannot be had.
func decide(ctx context.Context, ctl *quic.Stream, emit Sink, ask func(context.Context) (bool, error)) error {
	if ask == nil {
		return nil
	}
	emit(Event{Kind: EventState, State: StateOffered})
	ok, err := ask(ctx)
	if err != nil {
		_ = writeControlJSON(ctl, frameDecline, declineMsg{Reason: "the receiver could not decide"})
		awaitHangup(ctl)
		return err
	}
	if !ok {
		_ = writeControlJSON(ctl, frameDecline, declineMsg{Reason: "the receiver said no"})
		awaitHangup(ctl)
		return Errorf(KindDeclined, "", "you declined the transfer")
	}
	return nil
}

// takeOffer reads the sender's file offer (hello, a version 1 HELLO's
// payload), asks the user, prepares the partial state and accepts. It
// returns the receiver ready to run.
func takeOffer(ctx context.Context, ctl *quic.Stream, hello []byte, opts ReceiveOptions, wire *atomic.Int64) (*receiver, error) {
	emit := opts.Sink
	defer cancelWithContext(ctx, ctl)()
	m, err := UnmarshalManifest(hello[1:], opts.Limits)
	if err != nil {
		_ = writeControlJSON(ctl, frameError, errorMsg{Kind: KindOf(err), Message: "the receiver rejected the offer: " + err.Error()})
		awaitHangup(ctl)
		return nil, err
	}
	emit(Event{Kind: EventOffer, Files: m.FileCount(), Bytes: m.TotalSize(), Names: m.TopNames(5), Dest: opts.OutDir})
	var ask func(context.Context) (bool, error)
	if opts.Accept != nil {
		ask = func(ctx context.Context) (bool, error) { return opts.Accept(ctx, m) }
	}
	if err := decide(ctx, ctl, emit, ask); err != nil {
		return nil, err
	}

	if opts.OutDirAfterAccept != nil {
		if dir := opts.OutDirAfterAccept(); dir != "" {
			opts.OutDir = dir
		}
	}
	r := &receiver{m: m, hello: hello, opts: opts, ctl: ctl, wire: wire, emit: emit, accepted: time.Now(),
		writeBudget: make(chan struct{}, writeBehindBudget)}
	if err := r.prepare(); err != nil {
		_ = writeControlJSON(ctl, frameError, errorMsg{Kind: KindOf(err), Message: r.forPeer(err)})
		r.closePartials()
		if r.store != nil {
			_ = r.store.Remove() // nothing was written: leave no trace
		}
		awaitHangup(ctl)
		return nil, err
	}
	if err := writeControlJSON(ctl, frameAccept, r.acceptMsg()); err != nil {
		r.closePartials()
		return nil, peerGone(err)
	}
	return r, nil
}

// retakeOffer reads the sender's offer again on a new connection after a
// reconnect: it must be the offer already accepted, which is accepted again
// with what is held now.
func (r *receiver) retakeOffer(ctx context.Context, conn Conn) error {
	ctl, err := conn.AcceptStream(ctx)
	if err != nil {
		return peerGone(err)
	}
	stopCancel := cancelWithContext(ctx, ctl)
	defer stopCancel()
	f, err := readControl(ctl)
	if err != nil {
		return peerGone(err)
	}
	r.wire.Add(int64(len(f.payload)) + controlHeaderLen)
	if f.typ != frameHello || !bytes.Equal(f.payload, r.hello) {
		err := Errorf(KindTampered, "run ferry again on both sides", "after reconnecting, the sender offered different files")
		_ = writeControlJSON(ctl, frameError, errorMsg{Kind: KindTampered, Message: err.Error()})
		awaitHangup(ctl)
		return err
	}
	r.ctl = ctl
	if err := writeControlJSON(ctl, frameAccept, r.acceptMsg()); err != nil {
		return peerGone(err)
	}
	return nil
}

// attempt receives on conn (whose offer was just accepted) until every file
// is in place or the attempt fails.
func (r *receiver) attempt(ctx context.Context, conn Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer cancelWithContext(ctx, r.ctl)()
	r.emit(Event{Kind: EventState, State: StateReceiving})
	r.prog = newProgress(r.emit, r.m.TotalSize(), r.heldBytes())
	r.prog.start(ctx)
	defer r.prog.stop()
	defer func() { r.moved += r.prog.moved.Load() }()
	if err := r.run(ctx, conn); err != nil {
		return err
	}
	r.prog.finish()
	return nil
}

type receiver struct {
	m     *Manifest
	hello []byte // the accepted offer, as the sender sent it
	opts  ReceiveOptions
	ctl   *quic.Stream // of the current attempt
	wire  *atomic.Int64
	emit  Sink
	prog  *progress // of the current attempt
	moved int64     // by earlier attempts
	// accepted is when the user accepted the offer: Stats.Elapsed runs
	// from there, so time spent deciding does not lower the rate.
	accepted time.Time
	// writeBudget holds a token for every write-behind buffer a stream
	// holds beyond its first (writebehind.go).
	writeBudget chan struct{}

	store    *PartialStore
	partials []*PartialFile // per file index; nil for dirs and empty files
	dest     []string       // per file index: final absolute path
	skipped  int64

	mu      sync.Mutex
	missing []int                 // per file: chunks not yet verified
	counted [][]bool              // per file and chunk: already counted for this entry
	content []Hash                // per file: ContentID, computed once
	writing map[contentChunk]bool // content chunks being written or written this run
	placed  []bool                // per file: finalized, in place
	// unsynced: folders that received files placed directly, to be synced
	// before DONE.
	unsynced map[string]bool

	direct   []bool      // per file: placed directly (direct.go); set by prepare
	noDirect atomic.Bool // the system cannot: use the partial store
}

// contentChunk names a chunk by content: entries with identical content
// share one partial file, so a chunk written for one is there for all.
type contentChunk struct {
	id    Hash
	chunk int
}

// claim decides what to do with verified chunk ci of file fi: write it
// (the first copy of this content), only count it for this entry (another
// entry with the same content holds or is writing it), or drop it (this
// entry already has it: a resend).
func (r *receiver) claim(fi, ci int) (write, count bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counted[fi][ci] {
		return false, false
	}
	r.counted[fi][ci] = true
	key := contentChunk{r.content[fi], ci}
	if r.writing[key] || r.partials[fi].Have(ci) {
		return false, true
	}
	r.writing[key] = true
	return true, true
}

// unclaim forgets chunks that whole-file verification found bad, so they
// are written and counted again when they arrive.
func (r *receiver) unclaim(fi int, cs []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.content[fi]
	for _, c := range cs {
		r.counted[fi][c] = false
		delete(r.writing, contentChunk{id, c})
	}
}

// prepare opens the partial store, matches earlier partial state by
// content, checks free space and picks every file's destination.
func (r *receiver) prepare() error {
	out, err := filepath.Abs(r.opts.OutDir)
	if err != nil {
		return err
	}
	if st, err := os.Stat(out); err != nil || !st.IsDir() {
		return Errorf(KindNotFound, "create it or choose another folder with --out", "the download folder %q does not exist", r.opts.OutDir)
	}
	r.store, err = OpenPartialStore(out)
	if err != nil {
		return fmt.Errorf("transfer: open partial store: %w", err)
	}
	n := len(r.m.Files)
	r.partials = make([]*PartialFile, n)
	r.missing = make([]int, n)
	r.counted = make([][]bool, n)
	r.content = make([]Hash, n)
	r.writing = make(map[contentChunk]bool)
	r.placed = make([]bool, n)
	for i := range r.m.Files {
		fe := &r.m.Files[i]
		if fe.Dir || fe.Size == 0 {
			continue
		}
		p, err := r.store.Open(fe, r.m.ChunkSize)
		if err != nil {
			return err
		}
		r.partials[i] = p
		r.skipped += p.HaveBytes()
		r.missing[i] = fe.ChunkCount(r.m.ChunkSize) - p.HaveCount()
		r.content[i] = fe.ContentID()
		r.counted[i] = make([]bool, fe.ChunkCount(r.m.ChunkSize))
		for c := range r.counted[i] {
			r.counted[i][c] = p.Have(c)
		}
	}
	r.direct = directEligible(r.m, r.partials, r.content)
	r.unsynced = map[string]bool{}
	if err := r.pickDestinations(out); err != nil {
		return err
	}
	if free, err := FreeSpace(out); err == nil && free >= 0 {
		if need := r.m.TotalSize() - r.skipped + freeSpaceMargin; free < need {
			return Errorf(KindDiskFull, "free some space or choose another folder with --out",
				"not enough space in %s: the transfer needs %d more bytes, %d are free", out, need-freeSpaceMargin, free)
		}
	}
	return nil
}

// pickDestinations maps every entry to its final path. An existing
// top-level file or folder is kept and the new one saved beside it as
// "name (1)", unless Overwrite is set or the offer continues an earlier
// transfer into it (existing.go): then entries already in place are not
// received again, and other files in the way are kept, the new ones saved
// beside them.
func (r *receiver) pickDestinations(out string) error {
	rename := map[string]string{}
	found := map[int]bool{}
	taken := map[string]bool{}
	isTaken := func(p string) bool { return taken[p] }
	r.dest = make([]string, len(r.m.Files))
	for i, fe := range r.m.Files {
		top, rest, nested := strings.Cut(fe.Path, "/")
		final, ok := rename[top]
		if !ok {
			p, err := SafeJoin(out, top)
			if err != nil {
				return err
			}
			// Also with Overwrite: what is in place is not received again.
			if cont := r.continuesTop(out, top, found); !cont && !r.opts.Overwrite {
				p = uniqueName(p, isTaken)
			}
			taken[p] = true
			final = filepath.Base(p)
			rename[top] = final
		}
		rel := final
		if nested {
			rel = final + "/" + rest
		}
		p, err := SafeJoin(out, rel)
		if err != nil {
			return err
		}
		switch {
		case found[i]:
			r.markInPlace(i)
		case nested && !fe.Dir && !r.opts.Overwrite:
			// Inside a continued folder: keep what is in the way.
			p = uniqueName(p, isTaken)
		}
		taken[p] = true
		r.dest[i] = p
	}
	return nil
}

// forPeer is err's message for the sender. The receiver's folders are its
// own business: a failed file operation is told without its path, and the
// download folder's path is replaced by words elsewhere.
func (r *receiver) forPeer(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg := "the receiver could not save the files: " + pe.Err.Error()
		if KindOf(err) == KindDiskFull {
			msg += "; the received data is kept: once the receiver frees some space, run the same commands again to resume"
		}
		return msg
	}
	msg := err.Error()
	out, aerr := filepath.Abs(r.opts.OutDir)
	if aerr != nil || out == string(filepath.Separator) {
		return msg
	}
	return strings.ReplaceAll(msg, out, "the download folder")
}

// acceptMsg lists, per file, the chunks the receiver holds: verified in a
// partial file (from an earlier run or attempt) or already in place.
func (r *receiver) acceptMsg() acceptMsg {
	msg := acceptMsg{Have: map[int][]byte{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, fe := range r.m.Files {
		if fe.Dir || fe.Size == 0 {
			continue
		}
		n := fe.ChunkCount(r.m.ChunkSize)
		var bm []byte
		for c := range n {
			if r.placed[i] || r.counted[i][c] {
				if bm == nil {
					bm = make([]byte, (n+7)/8)
				}
				bitmapSet(bm, c)
			}
		}
		if bm != nil {
			msg.Have[i] = bm
		}
	}
	return msg
}

// heldBytes is how much of the transfer the receiver holds now.
func (r *receiver) heldBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var held int64
	for i := range r.m.Files {
		fe := &r.m.Files[i]
		if fe.Dir || fe.Size == 0 {
			continue
		}
		for c := range fe.ChunkCount(r.m.ChunkSize) {
			if r.placed[i] || r.counted[i][c] {
				held += int64(fe.ChunkLen(c, r.m.ChunkSize))
			}
		}
	}
	return held
}

func (r *receiver) closePartials() {
	for _, p := range r.partials {
		if p != nil {
			_ = p.Sync()
			_ = p.Close()
		}
	}
}

// sentMsg is the payload of SENT: how many data streams the sender has
// opened so far, so the receiver knows when it has read them all.
type sentMsg struct {
	Streams int `json:"streams"`
}

// run receives chunks until every file is in place, asking again for any
// chunk that fails verification.
func (r *receiver) run(ctx context.Context, conn Conn) (err error) {
	// Files already complete from an earlier run, listed before any
	// goroutine can change r.missing.
	var ready []int
	pendingFinal := 0
	r.mu.Lock()
	for i, f := range r.m.Files {
		if f.Dir || r.placed[i] {
			continue
		}
		pendingFinal++
		if r.missing[i] == 0 && f.Size > 0 {
			ready = append(ready, i)
		}
	}
	r.mu.Unlock()
	for i, f := range r.m.Files {
		if !f.Dir && f.Size == 0 && !r.placed[i] {
			ready = append(ready, i)
		}
	}
	events := make(chan recvEvent, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Control frames from the sender.
	wg.Go(func() {
		for {
			f, err := readControl(r.ctl)
			if err != nil {
				sendEvent(ctx, events, recvEvent{err: peerGone(err), fromControl: true})
				return
			}
			r.wire.Add(int64(len(f.payload)) + controlHeaderLen)
			sendEvent(ctx, events, recvEvent{frame: &f})
		}
	})
	// Data streams, each read by its own goroutine, at most
	// maxReadStreams at once (each holds one or two chunk buffers, and
	// more within the write-behind budget).
	var streamsMu sync.Mutex
	var open []*quic.Stream
	defer func() {
		// Unblock every reader on the way out; the sender's side of the
		// control stream is no longer needed either.
		r.ctl.CancelRead(codeCanceled)
		streamsMu.Lock()
		for _, st := range open {
			st.CancelRead(codeCanceled)
		}
		streamsMu.Unlock()
	}()
	slots := make(chan struct{}, maxReadStreams)
	wg.Go(func() {
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			st, err := conn.AcceptStream(ctx)
			if err != nil {
				sendEvent(ctx, events, recvEvent{err: peerGone(err)})
				return
			}
			st.CancelWrite(codeCanceled)
			streamsMu.Lock()
			open = append(open, st)
			streamsMu.Unlock()
			wg.Go(func() {
				defer func() { <-slots }()
				r.readStream(ctx, st, events)
			})
		}
	})
	// Finalizing (whole-file verification, fsync, move) runs beside
	// receiving, several files at once: for a folder of small files the
	// fsyncs dominate, and concurrent ones share the filesystem's commits.
	finalize := make(chan int, len(r.m.Files))
	for range finalizers {
		wg.Go(func() {
			for i := range finalize {
				sendEvent(ctx, events, recvEvent{finalized: i, err: r.finalize(i), isFinal: true})
			}
		})
	}
	defer close(finalize)
	// Registered last, so it runs first: the sender hears why before its
	// data streams are cancelled under it.
	defer func() {
		if k := KindOf(err); err != nil && k != KindPeerGone && k != KindCanceled {
			_ = writeControlJSON(r.ctl, frameError, errorMsg{Kind: k, Message: r.forPeer(err)})
		}
	}()

	for _, i := range ready {
		finalize <- i
	}
	streamsDone, streamsSent := 0, -1
	need := map[int][]int{}
	if pendingFinal == 0 {
		return r.complete(ctx, events)
	}
	for {
		var ev recvEvent
		select {
		case ev = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		switch {
		case ev.isFinal:
			var bad *BadChunksError
			switch {
			case errors.As(ev.err, &bad):
				need[ev.finalized] = append(need[ev.finalized], bad.Indices...)
			case ev.err != nil:
				return ev.err
			default:
				pendingFinal--
				if pendingFinal == 0 {
					return r.complete(ctx, events)
				}
			}
		case ev.err != nil:
			return ev.err
		case ev.frame != nil:
			switch ev.frame.typ {
			case frameSent:
				var s sentMsg
				if err := json.Unmarshal(ev.frame.payload, &s); err != nil {
					return fmt.Errorf("transfer: bad SENT frame: %w", err)
				}
				streamsSent = s.Streams
			case frameError:
				return peerError(ev.frame.payload)
			default:
				return fmt.Errorf("transfer: unexpected control frame %d from the sender", ev.frame.typ)
			}
		case ev.streamDone:
			streamsDone++
		case ev.bad:
			need[ev.file] = append(need[ev.file], ev.chunk)
		case ev.complete:
			finalize <- ev.file
		}
		// Everything the sender sent has been read: ask for what is still
		// missing (chunks that failed verification).
		if streamsSent >= 0 && streamsDone >= streamsSent && len(need) > 0 {
			for fi, cs := range need {
				slices.Sort(cs)
				need[fi] = slices.Compact(cs) // a chunk that failed twice is asked for once
			}
			if err := writeControlJSON(r.ctl, frameNeed, needMsg{Need: need}); err != nil {
				return peerGone(err)
			}
			need = map[int][]int{}
			streamsSent = -1
		}
	}
}

func sendEvent(ctx context.Context, ch chan<- recvEvent, ev recvEvent) {
	select {
	case ch <- ev:
	case <-ctx.Done():
	}
}

// recvEvent is one thing the receive loop hears from its goroutines.
type recvEvent struct {
	frame       *controlFrame
	err         error
	fromControl bool
	streamDone  bool
	bad         bool // chunk failed verification
	complete    bool // every chunk of file is verified
	file, chunk int
	isFinal     bool // finalize result for file finalized
	finalized   int
}

// readStream reads chunk frames from one data stream until its end.
func (r *receiver) readStream(ctx context.Context, st *quic.Stream, events chan<- recvEvent) {
	dec, err := newDecompressor(r.m.ChunkSize)
	if err != nil {
		sendEvent(ctx, events, recvEvent{err: err})
		return
	}
	defer dec.close()
	hdr := make([]byte, chunkHeaderLen)
	w := r.newChunkWriter(ctx, events, r.writeChunk)
	defer w.stop()
	for {
		b, err := w.get(ctx)
		if err != nil {
			return // the writer reported its failure; or the receive is over
		}
		if _, err := io.ReadFull(st, hdr); err != nil {
			w.put(b)
			if werr := w.stop(); werr != nil {
				return // reported by the writer
			}
			if errors.Is(err, io.EOF) {
				sendEvent(ctx, events, recvEvent{streamDone: true})
			} else {
				sendEvent(ctx, events, recvEvent{err: peerGone(err)})
			}
			return
		}
		h := parseChunkHeader(hdr)
		if err := h.validate(r.m); err != nil {
			st.CancelRead(codeCanceled)
			sendEvent(ctx, events, recvEvent{err: err})
			return
		}
		p := b.payload[:h.payloadLen]
		if _, err := io.ReadFull(st, p); err != nil {
			sendEvent(ctx, events, recvEvent{err: peerGone(err)})
			return
		}
		r.wire.Add(int64(chunkHeaderLen) + int64(h.payloadLen))
		data := p
		if h.flags&flagZstd != 0 {
			if b.raw == nil {
				b.raw = make([]byte, r.m.ChunkSize)
			}
			if data, err = dec.decompress(b.raw, p, int(h.rawLen)); err != nil {
				w.put(b)
				sendEvent(ctx, events, recvEvent{bad: true, file: int(h.file), chunk: int(h.chunk)})
				continue
			}
		}
		fi, ci := int(h.file), int(h.chunk)
		if HashChunk(data) != r.m.Files[fi].Chunks[ci] {
			w.put(b)
			sendEvent(ctx, events, recvEvent{bad: true, file: fi, chunk: ci})
			continue
		}
		write, count := r.claim(fi, ci)
		if !count {
			w.put(b)
			continue // a resend of a chunk this entry already has
		}
		placed := false
		if write && r.direct[fi] && !r.noDirect.Load() {
			if placed, err = r.placeDirect(fi, data); err != nil {
				w.put(b)
				sendEvent(ctx, events, recvEvent{err: err})
				return
			}
		}
		if write && !placed {
			w.write(b, data, fi, ci) // writes, marks and counts it
			continue
		}
		w.put(b)
		r.countChunk(ctx, events, fi, len(data))
	}
}

// writeChunk writes verified chunk ci of file fi, records it in the
// journal and counts it; the stream's writer calls it.
func (r *receiver) writeChunk(ctx context.Context, events chan<- recvEvent, fi, ci int, data []byte) error {
	pf := r.partials[fi]
	if err := pf.WriteChunk(ci, data); err != nil {
		return err
	}
	if err := pf.MarkVerified(ci); err != nil {
		return err
	}
	r.countChunk(ctx, events, fi, len(data))
	return nil
}

// countChunk counts a chunk of file fi that is in place, and tells the
// receive loop when it was the file's last.
func (r *receiver) countChunk(ctx context.Context, events chan<- recvEvent, fi, n int) {
	r.prog.add(int64(n), r.m.Files[fi].Path)
	r.mu.Lock()
	r.missing[fi]--
	done := r.missing[fi] == 0
	r.mu.Unlock()
	if done {
		sendEvent(ctx, events, recvEvent{complete: true, file: fi})
	}
}

// finalize verifies file i whole and moves it into place, recording the
// outcome in the receiver's state: the file is placed, or its bad chunks
// are missing again.
func (r *receiver) finalize(i int) error {
	err := r.place(i)
	var bad *BadChunksError
	switch {
	case err == nil:
		r.mu.Lock()
		r.placed[i] = true
		r.mu.Unlock()
	case errors.As(err, &bad):
		r.unclaim(i, bad.Indices)
		r.mu.Lock()
		r.missing[i] += len(bad.Indices)
		r.mu.Unlock()
	}
	return err
}

// placeDirect writes one-chunk file i, whose verified data is data, into
// place without the partial store. It reports false where the system
// cannot, and then never tries again.
func (r *receiver) placeDirect(i int, data []byte) (bool, error) {
	fe := &r.m.Files[i]
	dest := r.dest[i]
	if err := prepareDest(dest, r.opts.Overwrite); err != nil {
		return false, err
	}
	ok, err := placeDirect(directFile{dest: dest, perm: fs.FileMode(fe.Mode&0o777) &^ 0o022, mtime: time.Unix(0, fe.ModTime), data: data})
	if err != nil || !ok {
		r.noDirect.Store(!ok && err == nil)
		return false, err
	}
	r.mu.Lock()
	r.placed[i] = true
	r.unsynced[filepath.Dir(dest)] = true
	r.mu.Unlock()
	return true, nil
}

// place verifies file i whole and moves it into place (empty files are
// created directly). A file placed directly is already there.
func (r *receiver) place(i int) error {
	r.mu.Lock()
	done := r.placed[i]
	r.mu.Unlock()
	if done {
		return nil
	}
	fe := &r.m.Files[i]
	dest := r.dest[i]
	if err := prepareDest(dest, r.opts.Overwrite); err != nil {
		return err
	}
	if fe.Size == 0 {
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(fe.Mode&0o777))
		if err != nil {
			return fmt.Errorf("transfer: create %s: %w", dest, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		mt := time.Unix(0, fe.ModTime)
		return os.Chtimes(dest, mt, mt)
	}
	return r.partials[i].Finalize(dest)
}

// complete creates directory entries, removes the partial store if empty,
// tells the sender everything is in place and waits (briefly) for it to
// hang up, so closing the connection cannot overtake the DONE frame.
func (r *receiver) complete(ctx context.Context, events <-chan recvEvent) error {
	dirs := []int{}
	for i, fe := range r.m.Files {
		if fe.Dir {
			dirs = append(dirs, i)
		}
	}
	// Deepest first, so setting a parent's mtime comes last.
	sort.Slice(dirs, func(a, b int) bool { return len(r.dest[dirs[a]]) > len(r.dest[dirs[b]]) })
	for _, i := range dirs {
		fe := &r.m.Files[i]
		if err := os.MkdirAll(r.dest[i], 0o755); err != nil {
			return fmt.Errorf("transfer: create folder %s: %w", fe.Path, err)
		}
		_ = os.Chmod(r.dest[i], os.FileMode(fe.Mode&0o777)|0o700)
		mt := time.Unix(0, fe.ModTime)
		_ = os.Chtimes(r.dest[i], mt, mt)
	}
	r.closePartials()
	for _, id := range r.content {
		if id != (Hash{}) {
			r.store.Discard(id) // all in place: leftovers of earlier runs
		}
	}
	_ = r.store.Remove()
	// Files placed directly are synced; their names become durable here.
	for dir := range r.unsynced {
		syncDir(dir)
	}
	if err := writeControl(r.ctl, frameDone, nil); err != nil {
		return peerGone(err)
	}
	_ = r.ctl.Close()
	wait := time.NewTimer(doneGrace)
	defer wait.Stop()
	for {
		select {
		case ev := <-events:
			if ev.fromControl {
				return nil
			}
		case <-wait.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// awaitHangup closes our side of the control stream and waits (at most
// doneGrace) for the peer to close its side or the connection, so that
// closing the connection cannot overtake our last frame.
func awaitHangup(ctl *quic.Stream) {
	_ = ctl.Close()
	_ = ctl.SetReadDeadline(time.Now().Add(doneGrace))
	_, _ = io.Copy(io.Discard, ctl)
}

// doneGrace bounds the wait for the sender to hang up after DONE.
const doneGrace = 5 * time.Second

// maxReadStreams bounds the data streams read at once.
const maxReadStreams = 16

// finalizers is how many files are verified and moved into place at once.
const finalizers = 8
