package cli

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"

	"ferry/transfer"
)

const (
	// plainProgressInterval is the longest gap between progress lines off a
	// terminal (milestones may add lines in between).
	plainProgressInterval = 5 * time.Second
	// barRedrawInterval limits progress bar redraws on a terminal.
	barRedrawInterval = 100 * time.Millisecond
	// barWidth is the bar's width in cells; it shrinks on narrow terminals.
	barWidth = 30
	// maxOfferNames is how many offered names the offer line lists.
	maxOfferNames = 5
)

// humanSink holds the state of one NewHumanSink.
type humanSink struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	opts sinkOptions

	lastState transfer.State // the last state announced, to skip repeats

	// Off a terminal.
	started   bool      // a progress event has been seen
	lastLine  time.Time // when the last progress line was printed (or the first event)
	milestone int       // the highest milestone (25, 50, 75) printed

	// On a terminal.
	bar      *progressbar.ProgressBar
	barDesc  string    // the bar's current description (bytes, rate, ETA)
	lastDraw time.Time // when the bar was last updated
	onLine   bool      // the bar is on the current line, with no newline after it
	barEnded bool      // the bar is finished for good (done, error or finish)
}

// NewHumanSink returns a Sink that renders events for a person, and a
// finish function that ends the progress bar so later output starts on a
// fresh line; finish is idempotent and safe to call from any goroutine.
//
// On a terminal (tty true) it shows the code prominently, a progress bar
// (github.com/schollz/progressbar/v3) with bytes, rate and ETA, the path in
// words (see PathWords) and messages for state changes. Off a terminal it
// prints plain, timestamp-free lines instead of the bar: a progress line at
// most every 5 seconds, plus one as the transfer passes 25, 50 and 75%.
// Progress timing uses Event.Time when set, the clock otherwise.
//
// WithLink and WithQR print the share link and its QR code right after the
// code line. A received text is printed neutralised (see Neutralise),
// to the writer WithTextOutput gives, else to w.
func NewHumanSink(w io.Writer, tty bool, opts ...SinkOption) (transfer.Sink, func()) {
	s := &humanSink{w: w, tty: tty, opts: applyOptions(opts)}
	return s.handle, s.finish
}

// PathWords names a path for people: "Local network", "Direct",
// "Direct (TCP)" or "Relayed through your server". Unknown labels are
// returned as they are.
func PathWords(p transfer.PathLabel) string {
	switch p {
	case transfer.PathLAN:
		return "Local network"
	case transfer.PathDirectUDP:
		return "Direct"
	case transfer.PathDirectTCP:
		return "Direct (TCP)"
	case transfer.PathRelay:
		return "Relayed through your server"
	case "":
		return "Unknown"
	}
	return string(p)
}

// HumanBytes formats a byte count with SI units: "0 B", "999 B", "1.0 kB",
// "1.5 GB", "98 MB". Values under 10 units keep one decimal; larger ones are
// rounded to whole units.
func HumanBytes(n int64) string {
	if n < 0 {
		if n == math.MinInt64 {
			n++ // -MinInt64 overflows; one byte less is invisible here
		}
		return "-" + HumanBytes(-n)
	}
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := [...]string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n)
	for i, u := range units {
		v /= 1000
		switch {
		case v < 9.95:
			return fmt.Sprintf("%.1f %s", v, u)
		case v < 999.5 || i == len(units)-1:
			return fmt.Sprintf("%.0f %s", v, u)
		}
	}
	panic("unreachable")
}

// humanDuration formats an elapsed time: "12.3s" under a minute, else
// rounded to the second ("2m5s", "1h0m3s").
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// humanETA formats a remaining time, rounded to the second ("8s", "3m20s").
func humanETA(d time.Duration) string {
	if d < time.Second {
		return "1s"
	}
	return d.Round(time.Second).String()
}

// plural returns "1 file" or "N files".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// skippedLine says what the sender left out and why.
func skippedLine(e transfer.Event) string {
	var why string
	switch transfer.SkipReason(e.Reason) {
	case transfer.SkipLink:
		why = "a symbolic link; --follow-links sends what links point to"
	case transfer.SkipSpecial:
		why = "not a regular file or folder"
	case transfer.SkipDangling:
		why = "a link to nothing"
	case transfer.SkipLoop:
		why = "a link back into a folder it is in"
	default:
		why = e.Reason
	}
	return fmt.Sprintf("Not sent: %s (%s)", e.File, why)
}

// stateMessage is what a state change says; "" means nothing (the done and
// error events, or the offer prompt, speak for those states).
func stateMessage(st transfer.State) string {
	switch st {
	case transfer.StateHashing:
		return "Preparing files..."
	case transfer.StateWaiting:
		return "Waiting for the other computer..."
	case transfer.StatePairing:
		return "Pairing..."
	case transfer.StateConnecting:
		return "Connecting..."
	case transfer.StateSending:
		return "Sending..."
	case transfer.StateReceiving:
		return "Receiving..."
	case transfer.StateVerifying:
		return "Verifying..."
	case transfer.StateReconnecting:
		return "Connection lost; waiting for the other computer to come back (the transfer resumes by itself)..."
	case transfer.StateOffered, transfer.StateDone, transfer.StateFailed, "":
		return ""
	}
	return "State: " + string(st)
}

func eventTime(e transfer.Event) time.Time {
	if e.Time.IsZero() {
		return time.Now()
	}
	return e.Time
}

func (s *humanSink) handle(e transfer.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()

	switch e.Kind {
	case transfer.EventCode:
		s.code(e.Code)
	case transfer.EventOffer:
		s.println(offerLine(e))
	case transfer.EventText:
		s.endBar(false, 0)
		if s.opts.textOut != nil {
			printText(s.opts.textOut, s.opts.textTTY, e.Text)
		} else {
			printText(s.w, s.tty, e.Text)
		}
	case transfer.EventConnected:
		if e.Peer == "" {
			s.println(fmt.Sprintf("Connected (%s)", PathWords(e.Path)))
		} else {
			s.println(fmt.Sprintf("Connected (%s, %s)", PathWords(e.Path), e.Peer))
		}
	case transfer.EventPath:
		switch e.Reason {
		case "reconnected":
			s.println(fmt.Sprintf("Reconnected (%s, %s)", PathWords(e.Path), e.Peer))
			return
		case "upgraded":
			s.println(fmt.Sprintf("Found a direct path: now %s (%s)", PathWords(e.Path), e.Peer))
			return
		}
		if e.Peer == "" {
			s.println(fmt.Sprintf("Network changed: now %s", PathWords(e.Path)))
		} else {
			s.println(fmt.Sprintf("Network changed: now %s (%s)", PathWords(e.Path), e.Peer))
		}
	case transfer.EventResumed:
		s.println(fmt.Sprintf("Resuming: %s already here", HumanBytes(e.SkippedBytes)))
	case transfer.EventProgress:
		if s.tty {
			s.drawBar(e)
		} else {
			s.plainProgress(e)
		}
	case transfer.EventState:
		if e.State == s.lastState {
			return
		}
		s.lastState = e.State
		if msg := stateMessage(e.State); msg != "" {
			s.println(msg)
		}
	case transfer.EventSkipped:
		s.println(skippedLine(e))
	case transfer.EventDone:
		s.endBar(true, e.Bytes)
		s.println(doneLine(e))
	case transfer.EventError:
		s.endBar(false, 0)
		msg := e.Message
		if msg == "" {
			msg = string(e.ErrKind)
		}
		if msg == "" {
			msg = "the transfer failed"
		}
		s.println("Error: " + msg)
	}
}

// code shows the sender's share code and how to use it, and WithQR the
// link and its QR code.
func (s *humanSink) code(code string) {
	text := "Code: " + code + "\n"
	if s.opts.qr {
		if link := s.opts.linkText(code); link != "" {
			text += strings.TrimSuffix(link, "\n") + "\n"
		}
	}
	text += fmt.Sprintf("On the other computer run:  ferry receive\nand type the code (or: ferry receive %s)", code)
	if s.tty {
		text = "\n" + text + "\n" // set the code apart from the rest
	}
	s.println(text)
}

// TextSize is "a text of 42 bytes": how a text offer is named.
func TextSize(n int64) string {
	return "a text of " + plural(int(n), "byte")
}

func offerLine(e transfer.Event) string {
	if e.IsText {
		return "Offer: " + TextSize(e.Bytes)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Offer: %s, %s", plural(e.Files, "file"), HumanBytes(e.Bytes))
	if len(e.Names) > 0 {
		names := e.Names
		if len(names) > maxOfferNames {
			names = append(names[:maxOfferNames:maxOfferNames], "...")
		}
		b.WriteString(": ")
		b.WriteString(strings.Join(names, ", "))
	}
	if e.Dest != "" {
		b.WriteString(" → ")
		b.WriteString(e.Dest)
	}
	return b.String()
}

func doneLine(e transfer.Event) string {
	if e.IsText {
		return fmt.Sprintf("Done: %s in %s", TextSize(e.Bytes), humanDuration(e.Elapsed))
	}
	line := fmt.Sprintf("Done: %s, %s in %s", plural(e.Files, "file"), HumanBytes(e.Bytes), humanDuration(e.Elapsed))
	if secs := e.Elapsed.Seconds(); secs > 0 && e.Bytes > 0 {
		line += fmt.Sprintf(" (%s/s)", HumanBytes(int64(float64(e.Bytes)/secs)))
	}
	return line
}

// percent is done/total in whole percent, clamped to 0..100.
func percent(done, total int64) int {
	if total <= 0 {
		return 0
	}
	p := int(float64(done) / float64(total) * 100)
	return max(0, min(100, p))
}

// rateETA is ", 98 MB/s, ETA 8s" with the unknown parts left out.
func rateETA(e transfer.Event) string {
	var b strings.Builder
	if r := roundRate(e.Rate); r > 0 {
		fmt.Fprintf(&b, ", %s/s", HumanBytes(r))
	}
	if e.ETA > 0 {
		fmt.Fprintf(&b, ", ETA %s", humanETA(e.ETA))
	}
	return b.String()
}

// plainProgress prints a progress line off a terminal when 5 seconds have
// passed since the last one or the transfer passed a 25/50/75% milestone.
func (s *humanSink) plainProgress(e transfer.Event) {
	t := eventTime(e)
	if !s.started {
		s.started = true
		s.lastLine = t
	}
	pct := percent(e.Bytes, e.Total)
	reached := 0
	if e.Total > 0 && pct < 100 {
		reached = pct / 25 * 25 // 0, 25, 50 or 75
	}
	due := t.Sub(s.lastLine) >= plainProgressInterval
	if reached <= s.milestone && !due {
		return
	}
	s.milestone = max(s.milestone, reached)
	s.lastLine = t
	if e.Total > 0 {
		s.println(fmt.Sprintf("Progress: %d%% (%s of %s)%s", pct, HumanBytes(e.Bytes), HumanBytes(e.Total), rateETA(e)))
	} else {
		s.println(fmt.Sprintf("Progress: %s%s", HumanBytes(e.Bytes), rateETA(e)))
	}
}

// barText is what follows the bar: "1.2 GB / 3.4 GB, 98 MB/s, ETA 8s".
func barText(e transfer.Event) string {
	return fmt.Sprintf("%s / %s%s", HumanBytes(e.Bytes), HumanBytes(e.Total), rateETA(e))
}

// drawBar updates the progress bar on a terminal.
func (s *humanSink) drawBar(e transfer.Event) {
	if s.barEnded || e.Total <= 0 {
		return
	}
	t := eventTime(e)
	complete := e.Bytes >= e.Total
	if s.bar != nil && !complete {
		if d := t.Sub(s.lastDraw); d >= 0 && d < barRedrawInterval {
			return
		}
	}
	s.lastDraw = t
	s.barDesc = barText(e)
	if s.bar == nil {
		s.bar = progressbar.NewOptions64(e.Total,
			progressbar.OptionSetDescription(s.barDesc),
			progressbar.OptionSetWriter(s.w),
			progressbar.OptionSetWidth(barWidth),
			progressbar.OptionSetPredictTime(false), // the engine's ETA is better
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionThrottle(0), // throttled here, by event time
			progressbar.OptionUseANSICodes(useANSI),
		)
	} else {
		if s.bar.GetMax64() != e.Total {
			s.bar.ChangeMax64(e.Total)
		}
		// Describe redraws with the new text; Set64 below redraws again
		// only when the percentage changes, which is all the bar shows.
		s.bar.Describe(s.barDesc)
	}
	_ = s.bar.Set64(min(max(e.Bytes, 0), e.Total))
	s.onLine = true
	if s.bar.IsFinished() {
		s.endBar(false, 0)
	}
}

// endBar finishes the progress bar for good: filled to 100% showing
// doneBytes when full is set (the transfer is done), left as it is
// otherwise, and the line ended.
func (s *humanSink) endBar(full bool, doneBytes int64) {
	if s.bar == nil || s.barEnded {
		s.barEnded = true
		return
	}
	s.barEnded = true
	if full && !s.bar.IsFinished() {
		total := s.bar.GetMax64()
		if doneBytes <= 0 {
			doneBytes = total
		}
		s.barDesc = fmt.Sprintf("%s / %s", HumanBytes(doneBytes), HumanBytes(total))
		s.bar.Describe(s.barDesc)
		_ = s.bar.Finish()
		s.onLine = true
	}
	if s.onLine {
		fmt.Fprintln(s.w)
		s.onLine = false
	}
}

// useANSI reports whether the bar may use ANSI escapes: not on Windows,
// whose older consoles print them literally.
var useANSI = runtime.GOOS != "windows"

// println writes one message, keeping a live progress bar below it.
func (s *humanSink) println(msg string) {
	if s.onLine {
		_ = s.bar.Clear()
		if !useANSI {
			// Clear only returns to the start of the line there; blank it.
			width := utf8.RuneCountInString(strings.Trim(s.bar.String(), "\r"))
			fmt.Fprintf(s.w, "%s\r", strings.Repeat(" ", width))
		}
	}
	fmt.Fprintln(s.w, msg)
	if s.onLine {
		s.bar.Describe(s.barDesc) // redraws the bar
	}
}

// finish ends the bar's line so later output starts on a fresh one.
func (s *humanSink) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endBar(false, 0)
}
