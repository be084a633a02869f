package cli

import (
	"fmt"
	"io"

	"ferry/discovery/code"
	"ferry/transfer"
	"ferry/ui/qr"
)

// SinkOption adjusts what NewJSONSink and NewHumanSink show.
type SinkOption func(*sinkOptions)

// sinkOptions are the options a sink was made with.
type sinkOptions struct {
	withLink   bool   // show the share link beside the code
	rendezvous string // the server that goes in the link
	qr         bool   // human: print the link and its QR code
	qrANSI     bool   // human: paint the QR code black on white
	// human: where a received text goes (nil: with everything else), and
	// whether that is a terminal.
	textOut io.Writer
	textTTY bool
}

// WithLink makes a sink show the share link beside the code, with
// rendezvous (the sender's HOST:PORT, or "" for the local network) in it:
// the JSON code event gets a "link" field; human output prints the link
// only WithQR.
func WithLink(rendezvous string) SinkOption {
	return func(o *sinkOptions) { o.withLink, o.rendezvous = true, rendezvous }
}

// WithQR makes the human sink print the share link and its QR code right
// after the code line (needs WithLink). ansi paints the code black on
// white with escapes, so that it reads on a dark terminal; without it the
// glyphs are the dark modules (see qr.Code.Text).
func WithQR(ansi bool) SinkOption {
	return func(o *sinkOptions) { o.qr, o.qrANSI = true, ansi }
}

// WithTextOutput makes the human sink print a received text to w, and
// only the text (see Neutralise), while its messages go to its own
// writer; tty says whether w is a terminal. The JSON sink has the text in
// its text event instead.
func WithTextOutput(w io.Writer, tty bool) SinkOption {
	return func(o *sinkOptions) { o.textOut, o.textTTY = w, tty }
}

func applyOptions(opts []SinkOption) sinkOptions {
	var o sinkOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// link returns the share link for a code, "" and nil without WithLink, or
// an error when the code or the server cannot go in a link.
func (o sinkOptions) link(c string) (string, error) {
	if !o.withLink {
		return "", nil
	}
	sc, err := code.Parse(c)
	if err != nil {
		return "", err
	}
	l, err := code.NewLink(sc, o.rendezvous)
	if err != nil {
		return "", err
	}
	return l.String(), nil
}

// linkText is what the human sink prints after the code line WithQR: the
// link and its QR code, or why there is none.
func (o sinkOptions) linkText(c string) string {
	link, err := o.link(c)
	if err != nil {
		return fmt.Sprintf("No link: %v", err)
	}
	if link == "" {
		return ""
	}
	q, err := qr.Encode(link)
	if err != nil {
		return "Link: " + link
	}
	return "Link: " + link + "\n" + q.Text(o.qrANSI)
}

// qrANSI reports whether the QR code on stdout may be painted with ANSI
// escapes: on a terminal that takes them (see useANSI), unless NO_COLOR
// asks for no colours (https://no-color.org).
func qrANSI(env Env) bool {
	return env.StdoutTTY && useANSI && env.Getenv("NO_COLOR") == ""
}

// codeFrom reads the code the user gave, as a code or as a share link. A
// link's server becomes c.rendezvous unless --rendezvous was given
// (explicitRV): the code only exists on the sender's server, but the user
// may know a better address for it. Which server is used is said on
// stderr, since it is not what the flags alone would give. Errors are
// *transfer.Error of kind KindBadCode.
func (c *common) codeFrom(raw string, explicitRV bool, stderr io.Writer) (code.Code, error) {
	if !code.LooksLikeLink(raw) {
		sc, err := code.Parse(raw)
		if err != nil {
			return code.Code{}, &transfer.Error{Kind: transfer.KindBadCode, Err: err, Hint: "check the code with the sender"}
		}
		return sc, nil
	}
	l, err := code.ParseLink(raw)
	if err != nil {
		return code.Code{}, &transfer.Error{Kind: transfer.KindBadCode, Err: err, Hint: "check the link with the sender"}
	}
	switch {
	case l.Rendezvous != "" && (!explicitRV || c.rendezvous == l.Rendezvous):
		c.rendezvous = l.Rendezvous
		fmt.Fprintf(stderr, "Rendezvous server: %s (from the link)\n", l.Rendezvous)
	case l.Rendezvous != "":
		fmt.Fprintf(stderr, "Rendezvous server: %s (from --rendezvous; the link names %s)\n", c.rendezvous, l.Rendezvous)
	case c.rendezvous != "":
		fmt.Fprintf(stderr, "Rendezvous server: %s (the link names none: the sender may pair on the local network only)\n", c.rendezvous)
	default:
		fmt.Fprintln(stderr, "No rendezvous server: pairing on the local network, as the link says")
	}
	return l.Code, nil
}
