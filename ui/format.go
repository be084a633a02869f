package ui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"ferry/transfer"
	"ferry/ui/cli"
)

// The words the window uses for paths and states. They are what users see,
// so tests pin them.
const (
	textWaiting       = "Waiting for receiver"
	textConnecting    = "Connecting"
	textPreparing     = "Preparing files"
	textWaitAccept    = "Waiting for the receiver to accept"
	textDeciding      = "Waiting for your answer"
	textSending       = "Sending"
	textReceiving     = "Receiving"
	textVerifying     = "Verifying"
	textNetChanged    = "Network changed — reconnecting"
	textReconnecting  = "Connection lost — reconnecting"
	textDone          = "Done"
	textDoneSkipped   = "Done — %d not sent (links or special files)"
	textCanceled      = "Canceled"
	textReplaced      = "Replaced by a new send with more files"
	textDeclined      = "Declined"
	textFailedPrefix  = "Failed: "
	textStartingSend  = "Starting"
	textStartingRecv  = "Connecting"
	maxListedNames    = 8
	maxCompletions    = 6
	historyMaxEntries = 200
)

// pathWords names a path for people: "Direct", "Direct (TCP)", "Relayed
// through your server", "Local network"; "" while there is no path yet.
func pathWords(p transfer.PathLabel) string {
	if p == "" {
		return ""
	}
	return cli.PathWords(p)
}

// stateWords names an engine state for a transfer going dir.
func stateWords(st transfer.State, dir direction) string {
	switch st {
	case transfer.StateHashing:
		return textPreparing
	case transfer.StateWaiting:
		return textWaiting
	case transfer.StatePairing, transfer.StateConnecting:
		return textConnecting
	case transfer.StateOffered:
		if dir == dirSend {
			return textWaitAccept
		}
		return textDeciding
	case transfer.StateSending:
		return textSending
	case transfer.StateReceiving:
		return textReceiving
	case transfer.StateVerifying:
		return textVerifying
	case transfer.StateReconnecting:
		return textReconnecting
	case transfer.StateDone:
		return textDone
	case transfer.StateFailed:
		return "Failed"
	case "":
		if dir == dirSend {
			return textStartingSend
		}
		return textStartingRecv
	}
	return capitalize(string(st))
}

// humanBytes formats a byte count with SI units ("1.5 GB").
func humanBytes(n int64) string { return cli.HumanBytes(n) }

// humanRate formats bytes per second ("98 MB/s"); "" when unknown.
func humanRate(r float64) string {
	if r < 1 {
		return ""
	}
	return humanBytes(int64(r+0.5)) + "/s"
}

// humanETA formats the time left ("ETA 8s", "ETA 3m20s"); "" when unknown.
func humanETA(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	if d < time.Second {
		d = time.Second
	}
	return "ETA " + d.Round(time.Second).String()
}

// humanElapsed formats how long a transfer took ("4.2s", "2m5s").
func humanElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", max(d, 0).Seconds())
	}
	return d.Round(time.Second).String()
}

// plural returns "1 file" or "3 files".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// namesSummary is "report.pdf", "report.pdf and photos" or
// "report.pdf and 2 more".
func namesSummary(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	case 2:
		return names[0] + " and " + names[1]
	}
	return fmt.Sprintf("%s and %d more", names[0], len(names)-1)
}

// baseNames returns the last element of each path.
func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

// capitalize upper-cases the first letter of s.
func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || unicode.IsUpper(r) {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// guiHints rewrites the CLI flags that engine hints mention into the
// window's own words.
var guiHints = strings.NewReplacer(
	"choose another folder with --out", "choose another download folder",
	"(--rendezvous)", "(Settings → Rendezvous server)",
	"check --listen", "check the network connection",
	"to run ferry send again", "to send again",
)

// errorMessage turns any engine error into a sentence for people: the
// transfer.Error message with its hint, without Go package prefixes.
func errorMessage(err error) string {
	if err == nil {
		return ""
	}
	var msg string
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = "the other computer did not answer in time"
	case transfer.KindOf(err) == transfer.KindCanceled:
		msg = "the transfer was canceled"
	default:
		msg = err.Error()
	}
	for _, p := range []string{"transfer: ", "discovery: ", "transport: ", "code: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	msg = strings.TrimSpace(guiHints.Replace(msg))
	if msg == "" {
		msg = "unknown error"
	}
	return capitalize(msg)
}

// textWhat is "a text of 42 bytes".
func textWhat(n int64) string { return cli.TextSize(n) }
