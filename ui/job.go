package ui

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2/lang"

	"ferry/transfer"
)

// direction says whether a job sends or receives.
type direction int

const (
	dirSend direction = iota
	dirReceive
)

func (d direction) String() string {
	if d == dirReceive {
		return "receive"
	}
	return "send"
}

// netChangeHold is how long "Network changed — reconnecting" stays up
// after a path event once data flows again.
var netChangeHold = 2 * time.Second

// job is one transfer. The engine's goroutines write it through sink (the
// progress counters are atomics, the rest is under mu) and mark it dirty;
// the window's ticker reads it on the Fyne goroutine.
type job struct {
	id    int
	dir   direction
	paths []string // send: what is sent
	code  string   // receive: the code typed
	// rendezvous is the server the transfer pairs through, "" for the
	// local network only; a send's share link names it.
	rendezvous string
	started    time.Time
	ctx        context.Context
	cancel     context.CancelFunc

	// Written by the engine's goroutines.
	bytes atomic.Int64
	total atomic.Int64
	rate  atomic.Uint64 // math.Float64bits of bytes per second
	eta   atomic.Int64  // time.Duration
	dirty atomic.Bool

	// Set on the Fyne goroutine, read anywhere.
	userCanceled atomic.Bool
	declined     atomic.Bool
	replaced     atomic.Bool // canceled to send again with more files

	mu sync.Mutex
	s  jobState

	// Fyne goroutine only.
	row       *transferRow
	finalized bool
}

// jobState is the part of a job that changes rarely; guarded by job.mu.
type jobState struct {
	state transfer.State
	code  string // the share code (send) once known
	path  transfer.PathLabel
	peer  string

	netChanged      bool
	netChangedAt    time.Time
	netChangedBytes int64

	names  []string // what is transferred: top-level names
	files  int
	size   int64
	isText bool   // a text of size bytes, not files
	outDir string // receive: where files are saved

	skipped int // send: links and special files left out

	// receive: the text that arrived, until the window takes it to show
	// (takeText); the job keeps no copy after that.
	text     string
	haveText bool

	finished bool
	done     bool // finished and verified
	elapsed  time.Duration
	errMsg   string // from an error event or the returned error
	errKind  transfer.ErrorKind
}

// snapshot is a consistent copy of a job for drawing.
type snapshot struct {
	jobState
	bytes, total int64
	rate         float64
	eta          time.Duration
	canceled     bool
	declined     bool
	replaced     bool
}

// sinkFor returns the transfer.Sink for j; mark flags the window dirty.
func (j *job) sinkFor(mark func()) transfer.Sink {
	return func(e transfer.Event) {
		j.handle(e)
		j.dirty.Store(true)
		mark()
	}
}

// handle records one engine event.
func (j *job) handle(e transfer.Event) {
	if e.Kind == transfer.EventProgress {
		// The hot path: atomics only.
		j.bytes.Store(e.Bytes)
		j.total.Store(e.Total)
		j.rate.Store(math.Float64bits(e.Rate))
		j.eta.Store(int64(e.ETA))
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	s := &j.s
	switch e.Kind {
	case transfer.EventCode:
		s.code = e.Code
	case transfer.EventOffer:
		if len(e.Names) > 0 && len(s.names) == 0 {
			s.names = e.Names
		}
		s.files, s.size, s.isText = e.Files, e.Bytes, e.IsText
		if e.Dest != "" {
			s.outDir = e.Dest
		}
		j.total.Store(e.Bytes)
	case transfer.EventConnected:
		s.path, s.peer = e.Path, e.Peer
	case transfer.EventPath:
		s.path, s.peer = e.Path, e.Peer
		if e.Reason == "upgraded" {
			// A better path came up; nothing was interrupted. The path
			// column says the new way in words.
			break
		}
		s.netChanged = true
		s.netChangedAt = eventTime(e)
		s.netChangedBytes = j.bytes.Load()
	case transfer.EventResumed:
		j.bytes.Store(max(j.bytes.Load(), e.SkippedBytes))
	case transfer.EventState:
		s.state = e.State
		s.netChanged = false
	case transfer.EventDone:
		s.done = true
		s.state = transfer.StateDone
		s.netChanged = false
		s.files, s.size, s.elapsed = e.Files, e.Bytes, e.Elapsed
		j.bytes.Store(e.Bytes)
		j.total.Store(e.Bytes)
		j.eta.Store(0)
		if e.Elapsed > 0 {
			j.rate.Store(math.Float64bits(float64(e.Bytes) / e.Elapsed.Seconds()))
		}
	case transfer.EventSkipped:
		s.skipped++
	case transfer.EventText:
		s.text, s.haveText = e.Text, true
	case transfer.EventError:
		s.errKind = e.ErrKind
		if e.Message != "" {
			s.errMsg = capitalize(e.Message)
		}
	}
}

// finish records how the engine call ended; from the job's goroutine.
func (j *job) finish(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := &j.s
	s.finished = true
	s.netChanged = false
	if s.elapsed == 0 {
		s.elapsed = time.Since(j.started)
	}
	switch {
	case err == nil && s.errMsg == "":
		s.done = true
		s.state = transfer.StateDone
	case err != nil:
		s.done = false
		s.state = transfer.StateFailed
		if s.errKind == "" {
			s.errKind = transfer.KindOf(err)
		}
		if s.errMsg == "" {
			s.errMsg = errorMessage(err)
		}
	default: // an error event, then a nil return
		s.done = false
		s.state = transfer.StateFailed
	}
}

// snap copies the job for drawing at time now, ending the "network
// changed" note once data flows again and netChangeHold has passed.
func (j *job) snap(now time.Time) snapshot {
	j.mu.Lock()
	if j.s.netChanged && j.bytes.Load() > j.s.netChangedBytes && now.Sub(j.s.netChangedAt) >= netChangeHold {
		j.s.netChanged = false
	}
	sn := snapshot{jobState: j.s}
	sn.names = append([]string(nil), j.s.names...)
	sn.text = "" // takeText's alone
	j.mu.Unlock()
	sn.bytes = j.bytes.Load()
	sn.total = j.total.Load()
	sn.rate = math.Float64frombits(j.rate.Load())
	sn.eta = time.Duration(j.eta.Load())
	sn.canceled = j.userCanceled.Load() && !sn.done
	sn.declined = j.declined.Load() && !sn.done
	sn.replaced = j.replaced.Load() && !sn.done
	return sn
}

// takeText returns the text received, once.
func (j *job) takeText() (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	text, ok := j.s.text, j.s.haveText
	j.s.text, j.s.haveText = "", false
	return text, ok
}

// what names what a transfer moves, for titles and notifications:
// "report.pdf and 2 more", or "a text of 42 bytes".
func (s snapshot) what() string {
	if s.isText {
		return textWhat(s.size)
	}
	return namesSummary(s.names)
}

// setOutDir changes where a receive saves (the offer dialog's choice).
func (j *job) setOutDir(dir string) {
	j.mu.Lock()
	j.s.outDir = dir
	j.mu.Unlock()
}

func (j *job) outDir() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.s.outDir
}

// setNames sets what a transfer moves, for display.
func (j *job) setNames(names []string, files int, size int64) {
	j.mu.Lock()
	j.s.names = names
	j.s.files, j.s.size = files, size
	j.mu.Unlock()
}

// active reports whether the job is still running.
func (j *job) active() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.s.finished
}

// result is how the job ended, for the history.
func (s snapshot) result() string {
	switch {
	case s.done:
		return ResultDone
	case s.declined:
		return ResultDeclined
	case s.canceled:
		return ResultCanceled
	}
	return ResultFailed
}

// stateText is the state line of a transfer.
func (s snapshot) stateText(dir direction) string {
	if s.finished {
		switch s.result() {
		case ResultDone:
			if s.skipped > 0 {
				return lang.XN("state.doneSkipped", textDoneSkipped, s.skipped, vars{"Count": s.skipped})
			}
			return lang.X("state.done", textDone)
		case ResultDeclined:
			return lang.X("state.declined", textDeclined)
		case ResultCanceled:
			if s.replaced {
				return lang.X("state.replaced", textReplaced)
			}
			return lang.X("state.canceled", textCanceled)
		}
		return failedText(s.errMsg)
	}
	if s.errMsg != "" {
		return failedText(s.errMsg)
	}
	if s.netChanged {
		return lang.X("state.netChanged", textNetChanged)
	}
	return stateWords(s.state, dir)
}

// failedText is "Failed: " and why.
func failedText(reason string) string {
	return lang.X("state.failedBecause", textFailed, vars{"Reason": reason})
}

func eventTime(e transfer.Event) time.Time {
	if e.Time.IsZero() {
		return time.Now()
	}
	return e.Time
}

// errPanic wraps a panic in the engine so it shows as an error.
var errPanic = errors.New("internal error")
