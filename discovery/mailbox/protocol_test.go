package mailbox

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	id := uint64(42)
	in := &frame{Type: typeMessage, ID: &id, Side: "0123456789abcdef", Phase: "pake", Body: encodeBody([]byte{0, 1, 2})}
	b, err := encodeFrame(in)
	must(t, err)
	payload, err := readFrame(bytes.NewReader(b))
	must(t, err)
	out, err := decodeFrame(payload)
	must(t, err)
	if *out.ID != 42 || out.Side != in.Side || *out.Body != *in.Body || out.Version != nil {
		t.Fatalf("round trip: %+v", out)
	}
	// An empty body is still sent.
	b, _ = encodeFrame(&frame{Type: typeMessage, Body: encodeBody(nil)})
	if !bytes.Contains(b, []byte(`"body":""`)) {
		t.Fatalf("%s", b)
	}
}

func TestReadFrameErrors(t *testing.T) {
	cases := []struct {
		in   []byte
		want error
	}{
		{nil, io.EOF},
		{[]byte{0, 0}, io.ErrUnexpectedEOF},
		{[]byte{0, 0, 0, 0}, errEmptyFrame},
		{[]byte{0, 1, 0, 1}, errFrameTooLarge},
		{[]byte{0xff, 0xff, 0xff, 0xff}, errFrameTooLarge},
		{[]byte{0, 0, 0, 5, '{', '}'}, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		if _, err := readFrame(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("readFrame(%x) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

// countingReader fails the test if more than limit bytes are read.
type countingReader struct {
	r     io.Reader
	n     int
	limit int
	t     *testing.T
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n += n; c.n > c.limit {
		c.t.Fatalf("read %d bytes, limit %d", c.n, c.limit)
	}
	return n, err
}

func TestReadFrameBoundsMemory(t *testing.T) {
	// A 4 GiB announcement is refused after reading the header, and
	// without allocating anything like it.
	huge := append([]byte{0xff, 0xff, 0xff, 0xfe}, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 100 {
		r := &countingReader{r: bytes.NewReader(huge), limit: 4, t: t}
		if _, err := readFrame(r); !errors.Is(err, errFrameTooLarge) {
			t.Fatalf("readFrame = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("100 refused frames allocated %d bytes", d)
	}
	// A frame that announces 64 KiB but brings 3 bytes allocates at most
	// MaxFrameSize.
	runtime.ReadMemStats(&before)
	_, err := readFrame(bytes.NewReader([]byte{0, 1, 0, 0, 'a', 'b', 'c'}))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("readFrame = %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 2*MaxFrameSize {
		t.Fatalf("allocated %d bytes", d)
	}
}

func TestParseRequest(t *testing.T) {
	body := base64.StdEncoding.EncodeToString([]byte("hello"))
	good := map[string]request{
		`{"type":"allocate","id":1}`:                                     {typ: typeAllocate, id: 1},
		`{"type":"ping","id":18446744073709551615}`:                      {typ: typePing, id: 1<<64 - 1},
		`{"type":"claim","id":2,"nameplate":"7"}`:                        {typ: typeClaim, id: 2, nameplate: "7"},
		`{"type":"release","id":3}`:                                      {typ: typeRelease, id: 3},
		`{"type":"meet","id":8,"nameplate":"` + meetName("k") + `"}`:     {typ: typeMeet, id: 8, nameplate: meetName("k")},
		`{"type":"close","id":4,"mood":"scary"}`:                         {typ: typeClose, id: 4, mood: Scary},
		`{"type":"add","id":5,"phase":"pake_1-x","body":"` + body + `"}`: {typ: typeAdd, id: 5, phase: "pake_1-x", body: []byte("hello")},
		` {"type":"ping","id":6,"extra":[1,2,{}]} `:                      {typ: typePing, id: 6},
	}
	for in, want := range good {
		got, perr := parseRequest([]byte(in), DefaultMaxBody)
		if perr != nil {
			t.Errorf("%s: %v", in, perr)
			continue
		}
		if got.typ != want.typ || got.id != want.id || got.nameplate != want.nameplate ||
			got.phase != want.phase || !bytes.Equal(got.body, want.body) || got.mood != want.mood {
			t.Errorf("%s: got %+v, want %+v", in, got, want)
		}
	}
	maxBody := `{"type":"add","id":1,"phase":"p","body":"` + base64.StdEncoding.EncodeToString(make([]byte, DefaultMaxBody)) + `"}`
	if _, perr := parseRequest([]byte(maxBody), DefaultMaxBody); perr != nil {
		t.Errorf("body of exactly %d bytes: %v", DefaultMaxBody, perr)
	}
	// Base64 that is short enough encoded but decodes longer cannot exist;
	// check the decoded bound with padding-free slack anyway.
	over := `{"type":"add","id":1,"phase":"p","body":"` + base64.StdEncoding.EncodeToString(make([]byte, DefaultMaxBody+1)) + `"}`
	if _, perr := parseRequest([]byte(over), DefaultMaxBody); perr == nil || perr.code != CodeTooLarge {
		t.Errorf("oversized body: %v", perr)
	}
	if _, perr := parseRequest([]byte(`{"type":"add","id":1,"phase":"p","body":"`+strings.Repeat("A", 40000)+`"}`), DefaultMaxBody); perr == nil || perr.code != CodeTooLarge {
		t.Errorf("oversized encoded body: %v", perr)
	}
}

func FuzzReadFrame(f *testing.F) {
	frameOf := func(s string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
	}
	seeds := []string{
		`{"type":"hello","version":1,"side":"0123456789abcdef"}`,
		`{"type":"hello","version":2,"side":"0123456789abcdef"}`,
		`{"type":"allocate","id":1}`,
		`{"type":"claim","id":2,"nameplate":"7"}`,
		`{"type":"add","id":3,"phase":"pake","body":"aGVsbG8="}`,
		`{"type":"add","id":3,"phase":"pake","body":"aGVsbG8"}`,
		`{"type":"release","id":4}`,
		`{"type":"close","id":5,"mood":"happy"}`,
		`{"type":"ping","id":6}`,
		`{"type":"frobnicate","id":7}`,
		`{"type":"claim","id":-1,"nameplate":7}`,
		`{"type":"meet","id":8,"nameplate":"` + meetName("k") + `"}`,
		`{"type":"meet","id":8,"nameplate":"meet-short"}`,
		`{"type":"meet","id":8,"nameplate":"7"}`,
		`{not json`,
		`[]`,
		`null`,
	}
	var all []byte
	for _, s := range seeds {
		f.Add(frameOf(s))
		all = append(all, frameOf(s)...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, '{'})
	f.Add([]byte{0, 1, 0, 0, '{', '}'})
	f.Add([]byte{0, 0, 0, 10, '{', '"'})

	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data), limit: len(data), t: t}
		for i := 0; i < 100; i++ {
			payload, err := readFrame(r)
			if err != nil {
				return
			}
			if len(payload) == 0 || len(payload) > MaxFrameSize {
				t.Fatalf("readFrame returned %d bytes", len(payload))
			}
			if h, perr := parseHello(payload); (h == nil) == (perr == nil) {
				t.Fatalf("parseHello: %v, %v", h, perr)
			} else if h != nil && !validSide(h.side) {
				t.Fatalf("accepted side %q", h.side)
			}
			req, perr := parseRequest(payload, DefaultMaxBody)
			if (req == nil) == (perr == nil) {
				t.Fatalf("parseRequest: %v, %v", req, perr)
			}
			if perr != nil {
				if perr.code == "" || perr.msg == "" || !perr.fatal {
					t.Fatalf("bad protoError %+v", perr)
				}
				continue
			}
			switch req.typ {
			case typeAdd:
				if !validPhase(req.phase) || len(req.body) > DefaultMaxBody {
					t.Fatalf("accepted add %+v", req)
				}
			case typeClaim:
				if req.nameplate == "" || len(req.nameplate) > maxNameplate {
					t.Fatalf("accepted claim %+v", req)
				}
			case typeMeet:
				if !ValidMeetNameplate(req.nameplate) {
					t.Fatalf("accepted meet %+v", req)
				}
			case typeClose:
				if !req.mood.valid() {
					t.Fatalf("accepted close %+v", req)
				}
			case typeAllocate, typeRelease, typePing:
			default:
				t.Fatalf("accepted type %q", req.typ)
			}
		}
	})
}
