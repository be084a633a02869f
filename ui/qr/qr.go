// Package qr draws share links as QR codes: an image for the desktop app
// ([Code.Image]) and half-block text for terminals ([Code.Text]). Encoding
// is github.com/skip2/go-qrcode's (see docs/ARCHITECTURE.md for why that
// library); this package only adds the quiet zone and the drawing, so that
// both faces of ferry show the same symbol.
//
// A phone camera needs dark modules on a light background and a light
// border (the quiet zone) of 4 modules around the symbol. The image has
// both. Terminals are the hard case, since their background may be dark:
// Text with ansi set paints every cell itself, black on white, so the
// terminal's theme does not matter; see Text.
package qr

import (
	"image"
	"image/color"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QuietZone is the light border around the symbol, in modules: the 4 the
// QR standard (ISO/IEC 18004) asks for. Scanners often fail without it.
const QuietZone = 4

// level is the error correction level. Medium (15%) keeps a share link at
// version 4 or 5 (33 or 37 modules), small enough for an 80-column
// terminal, with room for a smudge or a glare on a screen.
const level = qrcode.Medium

// Code is an encoded QR symbol with its quiet zone.
type Code struct {
	size int    // modules per side, quiet zone included
	dark []bool // row-major, size*size
}

// Encode encodes text (in byte mode) as a QR code with error correction
// level M. It fails only if text is too long for a QR code.
func Encode(text string) (*Code, error) {
	q, err := qrcode.New(text, level)
	if err != nil {
		return nil, err
	}
	q.DisableBorder = true // the quiet zone is added below, explicitly
	// Bitmap encodes the symbol; skip2's QRCode must not be asked twice
	// (encoding appends to its state), so it is used once and dropped.
	bits := q.Bitmap()
	n := len(bits) + 2*QuietZone
	c := &Code{size: n, dark: make([]bool, n*n)}
	for y, row := range bits {
		for x, d := range row {
			c.dark[(y+QuietZone)*n+x+QuietZone] = d
		}
	}
	return c, nil
}

// Size is the number of modules per side, the quiet zone included.
func (c *Code) Size() int { return c.size }

// Dark reports whether the module at column x, row y (from the top left
// corner of the quiet zone) is dark. Outside the code it is false.
func (c *Code) Dark(x, y int) bool {
	if x < 0 || y < 0 || x >= c.size || y >= c.size {
		return false
	}
	return c.dark[y*c.size+x]
}

// Image draws the code with each module scale×scale pixels (scale below 1
// counts as 1): black on white, quiet zone included.
func (c *Code) Image(scale int) image.Image {
	scale = max(scale, 1)
	side := c.size * scale
	img := image.NewGray(image.Rect(0, 0, side, side))
	for py := 0; py < side; py++ {
		for px := 0; px < side; px++ {
			v := color.Gray{Y: 0xff}
			if c.Dark(px/scale, py/scale) {
				v.Y = 0
			}
			img.SetGray(px, py, v)
		}
	}
	return img
}

// ANSI escapes for Text: colours from the 256-colour palette's 6×6×6
// cube, entry 16 (#000000) and 231 (#ffffff). Colour themes remap the 16
// basic colours (a theme's "white" may be grey, its "black" dark blue) but
// leave the cube alone, and xterm, VTE, iTerm2, Terminal.app, Windows
// Terminal, tmux and screen all support it.
const (
	ansiBlackOnWhite = "\x1b[38;5;16;48;5;231m"
	ansiReset        = "\x1b[0m"
)

// Text draws the code with half-block characters, two rows of modules per
// line of text and one module per column: '█' both dark, '▀' top dark,
// '▄' bottom dark, ' ' both light. An odd last row is paired with a light
// one. Each line ends with '\n'.
//
// With ansi set, each line is painted black on white with 256-colour
// escapes (see ansiBlackOnWhite), which makes the code readable whatever
// the terminal's theme. Without it (output to a file, a terminal without
// escapes), the glyphs are the dark modules: right on a light background,
// inverted on a dark one, which many but not all phone scanners accept.
func (c *Code) Text(ansi bool) string {
	var b strings.Builder
	b.Grow((c.size + 1) / 2 * (c.size*3 + len(ansiBlackOnWhite) + len(ansiReset) + 1))
	for y := 0; y < c.size; y += 2 {
		if ansi {
			b.WriteString(ansiBlackOnWhite)
		}
		for x := 0; x < c.size; x++ {
			top, bottom := c.Dark(x, y), c.Dark(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		if ansi {
			b.WriteString(ansiReset)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
