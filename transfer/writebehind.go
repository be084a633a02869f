package transfer

import (
	"context"
	"sync"
)

// Write-behind: a stream's reader hands each verified chunk to a writer
// goroutine and goes on reading the next one, so that a write that waits
// for the disk does not stop the stream. Without it, every worker waited
// in its own write whenever the disk paused (a durable sync of the
// journal flushes the disk's cache, and on a virtual disk the writes
// beside it wait 100-200 ms for that), quic-go's flow control then
// stopped the sender, and both cores idled (docs/BENCHMARKS.md, "The
// journal's fsyncs"). The queue is short: what it holds is already
// hashed, and direct writes take it from memory without the CPU touching
// it again, whereas letting quic-go buffer more (larger windows) made the
// stream reads copy cold data, which measured slower.

// writeBehindDepth is how many verified chunks a stream's reader may have
// waiting for its writer: 4 MiB per stream at the default chunk size.
// 12 measured slower than 4 (more memory for the same stalls).
const writeBehindDepth = 4

// writeBehindBudget bounds the buffers all of a receiver's streams hold
// beyond one each (the reader's), whatever number of streams a sender
// opens: ferry's four streams get their full depth. A stream that finds
// the budget spent reads into the buffers it has, down to one, which is
// reading and writing in turn as without write-behind.
const writeBehindBudget = 4 * writeBehindDepth

// chunkBuf is a stream reader's buffer for one chunk: what came off the
// wire and, for compressed chunks, the decompressed data.
type chunkBuf struct {
	payload, raw []byte
}

// writeJob is one verified chunk for the writer.
type writeJob struct {
	buf    *chunkBuf
	data   []byte // the chunk's data, in buf
	fi, ci int
}

// chunkWriter is a stream reader's writer goroutine and the buffers the two
// pass between them. The reader takes a buffer (get), fills and verifies
// it, and either queues it (write) or gives it back (put); the writer
// writes, marks and counts each queued chunk (writeF, receiver.writeChunk)
// and gives the buffer back. After the first failure the writer writes nothing more,
// and get reports the failure.
type chunkWriter struct {
	r      *receiver
	writeF writeFunc
	events chan<- recvEvent
	free   chan *chunkBuf
	jobs   chan writeJob
	done   chan struct{}
	extra  int  // buffers beyond the first, each holding a token of r.writeBudget
	closed bool // stop was called

	mu  sync.Mutex
	err error
}

// writeFunc writes, marks and counts one verified chunk (receiver.writeChunk).
type writeFunc func(ctx context.Context, events chan<- recvEvent, fi, ci int, data []byte) error

// newChunkWriter starts the writer of one stream, writing with write;
// stop ends it.
func (r *receiver) newChunkWriter(ctx context.Context, events chan<- recvEvent, write writeFunc) *chunkWriter {
	w := &chunkWriter{
		r:      r,
		writeF: write,
		events: events,
		free:   make(chan *chunkBuf, writeBehindDepth+1),
		jobs:   make(chan writeJob, writeBehindDepth),
		done:   make(chan struct{}),
	}
	w.free <- w.newBuf()
	go w.run(ctx)
	return w
}

// run writes queued chunks until the queue is closed.
func (w *chunkWriter) run(ctx context.Context) {
	defer close(w.done)
	for j := range w.jobs {
		if w.failed() == nil {
			if err := w.writeF(ctx, w.events, j.fi, j.ci, j.data); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				sendEvent(ctx, w.events, recvEvent{err: err})
			}
		}
		w.free <- j.buf
	}
}

// failed returns the writer's first failure, if any.
func (w *chunkWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// newBuf allocates a chunk buffer (the decompression buffer comes with
// the first compressed chunk).
func (w *chunkWriter) newBuf() *chunkBuf {
	return &chunkBuf{payload: make([]byte, w.r.m.ChunkSize)}
}

// get returns a free buffer: one the writer is done with, else a new one
// while the stream's depth and the receiver's budget allow, else the next
// one the writer is done with. It fails once the writer failed (the
// reader stops: the writer already reported it) or ctx ends.
func (w *chunkWriter) get(ctx context.Context) (*chunkBuf, error) {
	var b *chunkBuf
	select {
	case b = <-w.free:
	default:
		if w.extra < writeBehindDepth {
			select {
			case w.r.writeBudget <- struct{}{}:
				w.extra++
				b = w.newBuf()
			default:
			}
		}
	}
	if b == nil {
		select {
		case b = <-w.free:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := w.failed(); err != nil {
		w.free <- b
		return nil, err
	}
	return b, nil
}

// put gives back a buffer that was not queued.
func (w *chunkWriter) put(b *chunkBuf) { w.free <- b }

// write queues a verified chunk held in b, waiting only while the queue is
// full (then the writer is busy with a chunk and takes the next).
func (w *chunkWriter) write(b *chunkBuf, data []byte, fi, ci int) {
	w.jobs <- writeJob{buf: b, data: data, fi: fi, ci: ci}
}

// stop waits until every queued chunk is written and ends the writer; it
// returns the writer's failure, if any. The reader calls it before it says
// the stream is done, so the receive loop never sees a stream end before
// its chunks are on disk and counted, and again (doing nothing) on its way
// out.
func (w *chunkWriter) stop() error {
	if w.closed {
		return w.failed()
	}
	w.closed = true
	close(w.jobs)
	<-w.done
	for range w.extra {
		<-w.r.writeBudget
	}
	w.extra = 0
	return w.failed()
}
