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

	"fyne.io/fyne/v2/lang"

	"ferry/transfer"
	"ferry/ui/cli"
)

// The English words the window uses for states, also the fallbacks of
// their translation keys (see i18n.go). Tests, which run in English, pin
// them.
const (
	textWaiting      = "Waiting for receiver"
	textConnecting   = "Connecting"
	textPreparing    = "Preparing files"
	textWaitAccept   = "Waiting for the receiver to accept"
	textDeciding     = "Waiting for your answer"
	textSending      = "Sending"
	textReceiving    = "Receiving"
	textVerifying    = "Verifying"
	textNetChanged   = "Network changed — reconnecting"
	textReconnecting = "Connection lost — reconnecting"
	textDone         = "Done"
	textDoneSkipped  = "Done — {{.Count}} not sent (links or special files)"
	textCanceled     = "Canceled"
	textReplaced     = "Replaced by a new send with more files"
	textDeclined     = "Declined"
	textFailed       = "Failed: {{.Reason}}"
	textStarting     = "Starting"
)

const (
	maxListedNames    = 8
	maxCompletions    = 6
	historyMaxEntries = 200
)

// pathWords names a path for people: "Direct", "Direct (TCP)", "Relayed
// through your server", "Local network"; "" while there is no path yet.
// An unknown label is shown as it is.
func pathWords(p transfer.PathLabel) string {
	switch p {
	case "":
		return ""
	case transfer.PathLAN:
		return lang.X("path.lan", "Local network")
	case transfer.PathDirectUDP:
		return lang.X("path.direct", "Direct")
	case transfer.PathDirectTCP:
		return lang.X("path.directTCP", "Direct (TCP)")
	case transfer.PathRelay:
		return lang.X("path.relay", "Relayed through your server")
	}
	return string(p)
}

// stateWords names an engine state for a transfer going dir.
func stateWords(st transfer.State, dir direction) string {
	switch st {
	case transfer.StateHashing:
		return lang.X("state.preparing", textPreparing)
	case transfer.StateWaiting:
		return lang.X("state.waiting", textWaiting)
	case transfer.StatePairing, transfer.StateConnecting:
		return lang.X("state.connecting", textConnecting)
	case transfer.StateOffered:
		if dir == dirSend {
			return lang.X("state.waitAccept", textWaitAccept)
		}
		return lang.X("state.deciding", textDeciding)
	case transfer.StateSending:
		return lang.X("state.sending", textSending)
	case transfer.StateReceiving:
		return lang.X("state.receiving", textReceiving)
	case transfer.StateVerifying:
		return lang.X("state.verifying", textVerifying)
	case transfer.StateReconnecting:
		return lang.X("state.reconnecting", textReconnecting)
	case transfer.StateDone:
		return lang.X("state.done", textDone)
	case transfer.StateFailed:
		return lang.X("state.failed", "Failed")
	case "":
		if dir == dirSend {
			return lang.X("state.starting", textStarting)
		}
		return lang.X("state.connecting", textConnecting)
	}
	return capitalize(string(st))
}

// humanBytes formats a byte count with SI units ("1.5 GB", in German
// "1,5 GB").
func humanBytes(n int64) string { return localDecimal(cli.HumanBytes(n)) }

// localDecimal writes the decimal point of a formatted number as the
// language does.
func localDecimal(s string) string {
	return strings.Replace(s, ".", lang.X("number.decimalPoint", "."), 1)
}

// humanRate formats bytes per second ("98 MB/s"); "" when unknown.
func humanRate(r float64) string {
	if r < 1 {
		return ""
	}
	return lang.X("rate.perSecond", "{{.Size}}/s", vars{"Size": humanBytes(int64(r + 0.5))})
}

// humanETA formats the time left ("ETA 8s", "ETA 3m20s"); "" when unknown.
func humanETA(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return lang.X("eta", "ETA {{.Time}}", vars{"Time": humanDuration(max(d, time.Second).Round(time.Second))})
}

// humanElapsed formats how long a transfer took ("4.2s", "2m5s").
func humanElapsed(d time.Duration) string {
	if d < time.Minute {
		return lang.X("duration.seconds", "{{.S}}s", vars{"S": localDecimal(fmt.Sprintf("%.1f", max(d, 0).Seconds()))})
	}
	return humanDuration(d.Round(time.Second))
}

// humanDuration formats whole seconds: "8s", "3m20s", "1h0m3s".
func humanDuration(d time.Duration) string {
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	v := vars{"H": h, "M": m, "S": s}
	switch {
	case h > 0:
		return lang.X("duration.hours", "{{.H}}h{{.M}}m{{.S}}s", v)
	case m > 0:
		return lang.X("duration.minutes", "{{.M}}m{{.S}}s", v)
	}
	return lang.X("duration.seconds", "{{.S}}s", v)
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
		return lang.X("names.two", "{{.First}} and {{.Second}}", vars{"First": names[0], "Second": names[1]})
	}
	return lang.XN("names.more", "{{.First}} and {{.Count}} more", len(names)-1,
		vars{"First": names[0], "Count": len(names) - 1})
}

// andMore is the last line of a list cut short: "and 3 more".
func andMore(n int) string {
	return lang.XN("list.andMore", "and {{.Count}} more", n, vars{"Count": n})
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
		msg = lang.X("error.timeout", "the other computer did not answer in time")
	case transfer.KindOf(err) == transfer.KindCanceled:
		msg = lang.X("error.canceled", "the transfer was canceled")
	default:
		msg = err.Error()
	}
	for _, p := range []string{"transfer: ", "discovery: ", "transport: ", "code: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	msg = strings.TrimSpace(guiHints.Replace(msg))
	if msg == "" {
		msg = lang.X("error.unknown", "unknown error")
	}
	return capitalize(msg)
}

// textWhat is "a text of 42 bytes".
func textWhat(n int64) string {
	return lang.XN("what.text", "a text of {{.Count}} bytes", int(n), vars{"Count": n})
}
