package qr

import (
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
)

var links = []string{
	"ferry://receive/7-tiger-tomorrow",
	"ferry://receive/99999-woodlark-yesteryear?rendezvous=ferry.example.org:7887",
	"ferry://receive/12345-aardvark-adroitness?rendezvous=[2001:db8::1]:65535",
	"ferry://receive/1-zulu-yucatan?rendezvous=" + strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".example:7887",
}

// decode reads a QR code from img with an independent decoder.
func decode(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	return res.GetText()
}

func TestImageDecodesToLink(t *testing.T) {
	for _, link := range links {
		c, err := Encode(link)
		if err != nil {
			t.Fatalf("Encode(%q): %v", link, err)
		}
		if got := decode(t, c.Image(4)); got != link {
			t.Errorf("decoded %q, want %q", got, link)
		}
	}
}

func TestQuietZone(t *testing.T) {
	c, err := Encode(links[1])
	if err != nil {
		t.Fatal(err)
	}
	n := c.Size()
	if n < 21+2*QuietZone {
		t.Fatalf("size %d is smaller than a version 1 symbol with its quiet zone", n)
	}
	for i := range n {
		for q := range QuietZone {
			for _, xy := range [][2]int{{i, q}, {i, n - 1 - q}, {q, i}, {n - 1 - q, i}} {
				if c.Dark(xy[0], xy[1]) {
					t.Fatalf("module %v in the quiet zone is dark", xy)
				}
			}
		}
	}
	// The top left finder pattern starts right inside the quiet zone.
	if !c.Dark(QuietZone, QuietZone) || !c.Dark(n-1-QuietZone, QuietZone) || !c.Dark(QuietZone, n-1-QuietZone) {
		t.Error("a finder pattern's corner is light")
	}
	img := c.Image(3)
	if b := img.Bounds(); b.Dx() != 3*n || b.Dy() != 3*n {
		t.Errorf("image %v, want %d pixels square", b, 3*n)
	}
	if g := color.GrayModel.Convert(img.At(0, 0)).(color.Gray); g.Y != 0xff {
		t.Errorf("the image's corner is %v, want white", g)
	}
	if g := color.GrayModel.Convert(img.At(3*QuietZone+1, 3*QuietZone+1)).(color.Gray); g.Y != 0 {
		t.Errorf("the finder pattern is %v, want black", g)
	}
}

// fromText reads the modules back from Text's output: the inverse of the
// half-block drawing, checking that each line is painted black on white
// when ansi is set.
func fromText(t *testing.T, text string, ansi bool) [][]bool {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("the text does not end with a newline")
	}
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if ansi {
			if !strings.HasPrefix(line, ansiBlackOnWhite) || !strings.HasSuffix(line, ansiReset) {
				t.Fatalf("line %q is not painted black on white and reset", line)
			}
			line = strings.TrimSuffix(strings.TrimPrefix(line, ansiBlackOnWhite), ansiReset)
		}
		if strings.Contains(line, "\x1b") {
			t.Fatalf("line %q has an escape", line)
		}
		var top, bottom []bool
		for _, r := range line {
			switch r {
			case '█':
				top, bottom = append(top, true), append(bottom, true)
			case '▀':
				top, bottom = append(top, true), append(bottom, false)
			case '▄':
				top, bottom = append(top, false), append(bottom, true)
			case ' ':
				top, bottom = append(top, false), append(bottom, false)
			default:
				t.Fatalf("unexpected character %q", r)
			}
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

func TestTextDecodesToLink(t *testing.T) {
	for _, ansi := range []bool{true, false} {
		for _, link := range links {
			c, err := Encode(link)
			if err != nil {
				t.Fatal(err)
			}
			rows := fromText(t, c.Text(ansi), ansi)
			n := c.Size()
			if len(rows) != n+n%2 {
				t.Fatalf("%d module rows, want %d", len(rows), n+n%2)
			}
			img := image.NewGray(image.Rect(0, 0, 4*n, 4*len(rows)))
			for y, row := range rows {
				if len(row) != n {
					t.Fatalf("row %d has %d modules, want %d", y, len(row), n)
				}
				for x, d := range row {
					if d != c.Dark(x, y) {
						t.Fatalf("module (%d,%d) drawn %v, want %v", x, y, d, c.Dark(x, y))
					}
					v := uint8(0xff)
					if d {
						v = 0
					}
					for i := range 16 {
						img.SetGray(4*x+i%4, 4*y+i/4, color.Gray{Y: v})
					}
				}
			}
			if got := decode(t, img); got != link {
				t.Errorf("ansi=%v: decoded %q, want %q", ansi, got, link)
			}
		}
	}
}

func TestEncodeRefusesTooLong(t *testing.T) {
	if _, err := Encode(strings.Repeat("x", 3000)); err == nil {
		t.Error("Encode took 3000 bytes")
	}
}
