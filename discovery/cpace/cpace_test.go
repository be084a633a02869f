package cpace

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/gtank/ristretto255"
)

// unhex decodes a hex string, ignoring whitespace, as the draft wraps long
// values over several lines.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func checkHex(t *testing.T, name string, got []byte, want string) {
	t.Helper()
	if w := unhex(t, want); !bytes.Equal(got, w) {
		t.Errorf("%s:\n got  %x\n want %x", name, got, w)
	}
}

// Test vectors from draft-irtf-cfrg-cpace-21, Appendix B.3 ("Test vector for
// CPace using group ristretto255 and hash SHA-512"), Sections B.3.1 to B.3.7
// and B.3.10/B.3.11, as published in
// https://github.com/cfrg/draft-irtf-cfrg-cpace, file
// draft-irtf-cfrg-cpace-21/draft-irtf-cfrg-cpace.txt.
var (
	// B.3.1 inputs.
	tvPRS = []byte("Password")
	tvCI  = `0b415f696e69746961746f720b425f726573706f6e646572` // b'\x0bA_initiator\x0bB_responder'
	tvSID = `7e4b4791d6a8ef019b936c79fb7f2c57`

	// B.3.1 outputs.
	tvGenString = `
		11435061636552697374726574746f3235350850617373776f726464
		00000000000000000000000000000000000000000000000000000000
		00000000000000000000000000000000000000000000000000000000
		00000000000000000000000000000000000000000000000000000000
		00000000000000000000000000000000180b415f696e69746961746f
		720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
		2c57`
	tvGenHash = `
		da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288
		b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772
		05f90851a657ee27`
	tvG = `
		222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5
		698c7e56`

	// B.3.2 message from A.
	tvADa = []byte("ADa")
	tvYa_ = `
		da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4f
		f0976d08` // ya, little endian
	tvYa = `
		d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec
		482b9157`

	// B.3.3 message from B.
	tvADb = []byte("ADb")
	tvYb_ = `
		d2316b454718c35362d83d69df6320f38578ed5984651435e2949762
		d900b80d` // yb, little endian
	tvYb = `
		3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7
		433f7258`

	// B.3.4 secret point K.
	tvK = `
		80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc98
		87c8b40f`

	// B.3.5 ISK, initiator/responder.
	tvTranscriptIR = `
		20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
		ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
		8232b5ebe63324e2d9e7433f725803414462`
	tvISKInputIR = `
		15435061636552697374726574746f3235355f49534b107e4b4791d6
		a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55
		a2f80ac19c333f917a05fc9887c8b40f20d6bac480f2c386c394efc7
		c47adb9925dcd2630b64f240c50f8d0eec482b915703414461203ea7
		e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f
		725803414462`
	tvISKIR = `
		b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
		ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
		3fa2068af7900447`

	// B.3.6 ISK, parallel execution (ordered concatenation).
	tvTranscriptOC = `
		6f6320d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f
		8d0eec482b915703414461203ea7e0b19560d7c0b0f5734f63b95528
		6dfa8232b5ebe63324e2d9e7433f725803414462`
	tvISKSY = `
		544199d71f62f8d9a1fee55727e24fe4a45844593c2b6013c4fa3969
		d0e5debb2244675c0b43397cbb68d342b01fc0f98fc961469a25134d
		e9f0f813c1a57476`

	// B.3.7 optional session id output.
	tvSidOutIR = `
		bb1c449b35f0ea79a65c209f329a693d475e0ce2387bed9fe4b78f60
		b2a27c219813fb2cfe175ef40d2222d9261e66da7d78f7c55a303b1b
		8611dcdfab880c47`
	tvSidOutOC = `
		10d5941d4933497fe31b9188d690b84465e2a2d158332a7267284a07
		1a8d0876fc5c8c329dc735d59a9f8ef6623ee23924704a2f929dd631
		ca981227ee82fff2`

	// B.3.10 scalar_mult with valid inputs.
	tvS = `
		7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88
		cf538a05`
	tvX = `
		2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d6
		54b4a51c`
	tvSX = `
		7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e
		7f6b600e`

	// B.3.11 invalid inputs for scalar_mult_vfy.
	tvYi1 = `
		2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d6
		54b4a51c`
	tvYi2 = `
		00000000000000000000000000000000000000000000000000000000
		00000000`
)

func TestDraftGenerator(t *testing.T) {
	ci, sid := unhex(t, tvCI), unhex(t, tvSID)
	gs := generatorString([]byte(dsi), tvPRS, ci, sid, sInBytes)
	checkHex(t, "generator_string", gs, tvGenString)
	// ZPAD length: 100.
	if zpad := len(gs) - lenPrefixed(len(dsi)) - lenPrefixed(len(tvPRS)) -
		lenPrefixed(len(ci)) - lenPrefixed(len(sid)) - 1; zpad != 100 {
		t.Errorf("zero padding length = %d, want 100", zpad)
	}
	h := sha512.Sum512(gs)
	checkHex(t, "hash result", h[:], tvGenHash)
	checkHex(t, "encoded generator g", calculateGenerator(tvPRS, ci, sid).Bytes(), tvG)
}

func TestDraftExchange(t *testing.T) {
	ci, sid := unhex(t, tvCI), unhex(t, tvSID)

	a, msgA, err := startWithScalar(Initiator, tvPRS, ci, sid, tvADa, unhex(t, tvYa_))
	if err != nil {
		t.Fatal(err)
	}
	b, msgB, err := startWithScalar(Responder, tvPRS, ci, sid, tvADb, unhex(t, tvYb_))
	if err != nil {
		t.Fatal(err)
	}
	// B.3.2 / B.3.3: the messages are lv_cat(Ya, ADa) and lv_cat(Yb, ADb).
	checkHex(t, "Ya", a.ownY, tvYa)
	checkHex(t, "Yb", b.ownY, tvYb)
	checkHex(t, "msg A", msgA, "20"+tvYa+"03414461")
	checkHex(t, "msg B", msgB, "20"+tvYb+"03414462")

	// B.3.4: K from both sides.
	ya, _ := ristretto255.NewScalar().SetCanonicalBytes(unhex(t, tvYa_))
	yb, _ := ristretto255.NewScalar().SetCanonicalBytes(unhex(t, tvYb_))
	kA, ok := scalarMultVfy(ya, unhex(t, tvYb))
	if !ok {
		t.Fatal("scalar_mult_vfy(ya, Yb) failed")
	}
	kB, ok := scalarMultVfy(yb, unhex(t, tvYa))
	if !ok {
		t.Fatal("scalar_mult_vfy(yb, Ya) failed")
	}
	checkHex(t, "K (A)", kA, tvK)
	checkHex(t, "K (B)", kB, tvK)

	// B.3.5: initiator/responder ISK through the public API.
	iskA, err := a.Finish(msgB)
	if err != nil {
		t.Fatal(err)
	}
	iskB, err := b.Finish(msgA)
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "ISK_IR (A)", iskA, tvISKIR)
	checkHex(t, "ISK_IR (B)", iskB, tvISKIR)
	checkHex(t, "transcript_ir (A)", a.Transcript(), tvTranscriptIR)
	checkHex(t, "transcript_ir (B)", b.Transcript(), tvTranscriptIR)
	checkHex(t, "ISK input", append(lvCat([]byte(dsiISK), sid, kA), a.Transcript()...), tvISKInputIR)
	if !bytes.Equal(a.PeerAD(), tvADb) || !bytes.Equal(b.PeerAD(), tvADa) {
		t.Errorf("PeerAD: A got %q, B got %q", a.PeerAD(), b.PeerAD())
	}

	// B.3.6: symmetric ISK with ordered concatenation.
	Ya, Yb := unhex(t, tvYa), unhex(t, tvYb)
	trOC := transcriptOC(Ya, tvADa, Yb, tvADb)
	checkHex(t, "transcript_oc", trOC, tvTranscriptOC)
	checkHex(t, "ISK_SY", computeISK(sid, kA, trOC), tvISKSY)

	// B.3.7: optional sid output.
	sidIR := sha512.Sum512(append([]byte("CPaceSidOutput"), a.Transcript()...))
	checkHex(t, "sid_output_ir", sidIR[:], tvSidOutIR)
	sidOC := sha512.Sum512(append([]byte("CPaceSidOutput"), trOC...))
	checkHex(t, "sid_output_oc", sidOC[:], tvSidOutOC)
}

func TestDraftScalarMultVfy(t *testing.T) {
	s, err := ristretto255.NewScalar().SetCanonicalBytes(unhex(t, tvS))
	if err != nil {
		t.Fatal(err)
	}
	// B.3.10.
	X, err := ristretto255.NewElement().SetCanonicalBytes(unhex(t, tvX))
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "scalar_mult(s, decode(X))", ristretto255.NewElement().ScalarMult(s, X).Bytes(), tvSX)
	got, ok := scalarMultVfy(s, unhex(t, tvX))
	if !ok {
		t.Fatal("scalar_mult_vfy(s, X) failed")
	}
	checkHex(t, "scalar_mult_vfy(s, X)", got, tvSX)
	// B.3.11: invalid encoding and the neutral element must abort.
	for _, y := range []string{tvYi1, tvYi2} {
		if _, ok := scalarMultVfy(s, unhex(t, y)); ok {
			t.Errorf("scalar_mult_vfy(s, %s) did not abort", strings.Join(strings.Fields(y), ""))
		}
	}
}

// TestDraftStringUtilities checks the helper vectors of draft-21
// Appendix A.1.2 (prepend_len), A.1.4 (lv_cat), A.3.3 (o_cat), A.3.5
// (transcript_ir) and A.3.7 (transcript_oc).
func TestDraftStringUtilities(t *testing.T) {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	checkHex(t, `prepend_len(b"")`, lvCat([]byte{}), "00")
	checkHex(t, `prepend_len(b"1234")`, lvCat([]byte("1234")), "0431323334")
	checkHex(t, "prepend_len(range(127))", lvCat(seq(127)), "7f"+hex.EncodeToString(seq(127)))
	checkHex(t, "prepend_len(range(128))", lvCat(seq(128)), "8001"+hex.EncodeToString(seq(128)))
	checkHex(t, "lv_cat", lvCat([]byte("1234"), []byte("5"), []byte(""), []byte("678")), "043132333401350003363738")

	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"\x00", "\x00\x00", false},
		{"\x01", "\x00\x00", true},
		{"\x00\x00", "\x00", true},
		{"\x00\x00", "\x01", false},
		{"\x00\x01", "\x01", false},
		{"ABCD", "BCD", false},
	} {
		if got := lexLarger([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("lexiographically_larger(%q, %q) = %v", c.a, c.b, got)
		}
	}
	checkHex(t, "o_cat(ABCD,BCD)", oCat([]byte("ABCD"), []byte("BCD")), "6f6342434441424344")
	checkHex(t, "o_cat(BCD,ABCDE)", oCat([]byte("BCD"), []byte("ABCDE")), "6f634243444142434445")

	pa, pb := []byte("PartyA"), []byte("PartyB")
	checkHex(t, "transcript_ir 1", transcriptIR([]byte("123"), pa, []byte("234"), pb),
		"03313233065061727479410332333406506172747942")
	checkHex(t, "transcript_ir 2", transcriptIR([]byte("3456"), pa, []byte("2345"), pb),
		"043334353606506172747941043233343506506172747942")
	checkHex(t, "transcript_oc 1", transcriptOC([]byte("123"), pa, []byte("234"), pb),
		"6f6303323334065061727479420331323306506172747941")
	checkHex(t, "transcript_oc 2", transcriptOC([]byte("3456"), pa, []byte("2345"), pb),
		"6f63043334353606506172747941043233343506506172747942")
}

// run performs one complete exchange and returns both ISKs.
func run(t *testing.T, prsA, prsB, ciA, ciB, sidA, sidB, adA, adB []byte) (iskA, iskB []byte, a, b *State) {
	t.Helper()
	a, msgA, err := Start(Initiator, prsA, ciA, sidA, adA)
	if err != nil {
		t.Fatal(err)
	}
	b, msgB, err := Start(Responder, prsB, ciB, sidB, adB)
	if err != nil {
		t.Fatal(err)
	}
	if iskB, err = b.Finish(msgA); err != nil {
		t.Fatal(err)
	}
	if iskA, err = a.Finish(msgB); err != nil {
		t.Fatal(err)
	}
	return iskA, iskB, a, b
}

func TestSamePasswordAgrees(t *testing.T) {
	prs := []byte("correct horse battery staple")
	ci := lvCat([]byte("initiator-id"), []byte("responder-id"), []byte("7-nameplate"))
	seen := map[string]bool{}
	for i := range 64 {
		sid := []byte{byte(i)}
		if i%2 == 0 {
			sid = nil // empty sid is allowed
		}
		iskA, iskB, a, b := run(t, prs, prs, ci, ci, sid, sid, []byte("ad-a"), []byte("ad-b"))
		if len(iskA) != 64 || !bytes.Equal(iskA, iskB) {
			t.Fatalf("run %d: ISKs differ or wrong length:\n A %x\n B %x", i, iskA, iskB)
		}
		if !bytes.Equal(a.Transcript(), b.Transcript()) {
			t.Fatalf("run %d: transcripts differ", i)
		}
		if seen[string(iskA)] {
			t.Fatalf("run %d: repeated ISK", i)
		}
		seen[string(iskA)] = true
	}
}

func TestMismatchedInputsDisagree(t *testing.T) {
	prs, ci, sid := []byte("1234"), []byte("ci"), []byte("sid")
	cases := []struct {
		name            string
		prsB, ciB, sidB []byte
	}{
		{"password", []byte("1235"), ci, sid},
		{"ci", prs, []byte("cj"), sid},
		{"sid", prs, ci, []byte("sie")},
		{"empty sid", prs, ci, nil},
		{"ci/sid boundary", prs, []byte("cis"), []byte("id")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			iskA, iskB, _, _ := run(t, prs, c.prsB, ci, c.ciB, sid, c.sidB, nil, nil)
			if bytes.Equal(iskA, iskB) {
				t.Fatal("ISKs agree despite mismatched inputs")
			}
		})
	}
}

func TestTamperedADDisagrees(t *testing.T) {
	prs := []byte("pw")
	a, msgA, err := Start(Initiator, prs, nil, nil, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, msgB, err := Start(Responder, prs, nil, nil, []byte("world"))
	if err != nil {
		t.Fatal(err)
	}
	// Replace A's AD on the wire.
	forged := lvCat(msgA[1:33], []byte("HELLO"))
	iskB, err := b.Finish(forged)
	if err != nil {
		t.Fatal(err)
	}
	iskA, err := a.Finish(msgB)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(iskA, iskB) {
		t.Fatal("ISKs agree despite tampered AD")
	}
}

func TestPeerAD(t *testing.T) {
	long := bytes.Repeat([]byte{0xab}, 300) // two-byte length prefix
	for _, c := range []struct{ adA, adB []byte }{
		{[]byte("ADa"), []byte("ADb")},
		{nil, []byte("only-b")},
		{long, nil},
		{[]byte{}, long},
	} {
		iskA, iskB, a, b := run(t, []byte("pw"), []byte("pw"), nil, nil, nil, nil, c.adA, c.adB)
		if !bytes.Equal(iskA, iskB) {
			t.Fatal("ISKs differ")
		}
		if !bytes.Equal(a.PeerAD(), c.adB) || !bytes.Equal(b.PeerAD(), c.adA) {
			t.Fatalf("PeerAD mismatch: A got %q want %q, B got %q want %q", a.PeerAD(), c.adB, b.PeerAD(), c.adA)
		}
		// PeerAD returns a copy.
		if p := a.PeerAD(); len(p) > 0 {
			p[0] ^= 1
			if !bytes.Equal(a.PeerAD(), c.adB) {
				t.Fatal("PeerAD exposes internal state")
			}
		}
	}
}

func TestStartCopiesInputs(t *testing.T) {
	sid, ad := []byte("sid"), []byte("ad")
	a, msgA, err := Start(Initiator, []byte("pw"), nil, sid, ad)
	if err != nil {
		t.Fatal(err)
	}
	b, msgB, err := Start(Responder, []byte("pw"), nil, []byte("sid"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sid[0], ad[0] = 'X', 'X'
	iskB, err := b.Finish(msgA)
	if err != nil {
		t.Fatal(err)
	}
	iskA, err := a.Finish(msgB)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iskA, iskB) {
		t.Fatal("caller's later edits of sid/ad changed the run")
	}
}

func TestFinishOnce(t *testing.T) {
	a, _, err := Start(Initiator, []byte("pw"), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, msgB, err := Start(Responder, []byte("pw"), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Finish(msgB); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Finish(msgB); err == nil {
		t.Fatal("second Finish succeeded")
	}

	// A failed Finish consumes the state too.
	c, _, err := Start(Initiator, []byte("pw"), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Finish(nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("Finish(nil) = %v", err)
	}
	if _, err := c.Finish(msgB); err == nil {
		t.Fatal("Finish after a failed Finish succeeded")
	}
}

func TestInvalidPartyAndScalar(t *testing.T) {
	if _, _, err := Start(Party(2), []byte("pw"), nil, nil, nil); err == nil {
		t.Error("Start accepted party 2")
	}
	if _, _, err := startWithScalar(Initiator, []byte("pw"), nil, nil, nil, make([]byte, 32)); err == nil {
		t.Error("startWithScalar accepted the zero scalar")
	}
	over := bytes.Repeat([]byte{0xff}, 32)
	if _, _, err := startWithScalar(Initiator, []byte("pw"), nil, nil, nil, over); err == nil {
		t.Error("startWithScalar accepted a non-canonical scalar")
	}
}

// zeroThenReader yields n zero bytes, then bytes of value 0xff.
type zeroThenReader struct{ n int }

func (r *zeroThenReader) Read(p []byte) (int, error) {
	for i := range p {
		if r.n > 0 {
			p[i] = 0
			r.n--
		} else {
			p[i] = 0xff
		}
	}
	return len(p), nil
}

func TestSampleScalar(t *testing.T) {
	// A zero sample is drawn again; the top four bits are cleared.
	y, err := sampleScalar(&zeroThenReader{n: 32})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0xff}, 32)
	want[31] = 0x0f
	if !bytes.Equal(y.Bytes(), want) {
		t.Fatalf("sampleScalar = %x, want %x", y.Bytes(), want)
	}
	if _, err := sampleScalar(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("sampleScalar ignored a short read")
	}
}

// validMessage returns a well-formed message from a fresh responder.
func validMessage(t testing.TB, ad []byte) []byte {
	t.Helper()
	_, msg, err := Start(Responder, []byte("pw"), []byte("ci"), nil, ad)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestMalformedMessages(t *testing.T) {
	good := validMessage(t, []byte("ad"))
	Y := good[1:33]
	gen := ristretto255.NewGeneratorElement().Bytes()
	highBit := append([]byte{}, gen...)
	highBit[31] |= 0x80
	// p = 2^255 - 19 encoded little endian: a non-canonical field element.
	p := unhex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	// s = 1 is "negative" (odd) and therefore not a canonical encoding.
	negative := make([]byte, 32)
	negative[0] = 1

	cases := map[string][]byte{
		"empty":                  nil,
		"only length":            {0x20},
		"truncated Y":            good[:20],
		"missing AD length":      good[:33],
		"truncated AD":           good[:len(good)-1],
		"trailing byte":          append(append([]byte{}, good...), 0),
		"Y too short":            lvCat(Y[:31], []byte("ad")),
		"Y too long":             lvCat(append(append([]byte{}, Y...), 0), []byte("ad")),
		"AD length too long":     append(append([]byte{0x20}, Y...), 0x05, 'a', 'd'),
		"AD length too short":    append(append([]byte{0x20}, Y...), 0x01, 'a', 'd'),
		"non-minimal Y length":   append(append([]byte{0xa0, 0x00}, Y...), 0x02, 'a', 'd'),
		"non-minimal AD length":  append(append([]byte{0x20}, Y...), 0x82, 0x00, 'a', 'd'),
		"unterminated AD length": append(append([]byte{0x20}, Y...), 0x80),
		"huge AD length":         append(append([]byte{0x20}, Y...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"identity":               lvCat(make([]byte, 32), nil),
		"identity with AD":       lvCat(make([]byte, 32), []byte("ad")),
		"draft invalid Y_i1":     lvCat(unhex(t, tvYi1), nil),
		"non-canonical high bit": lvCat(highBit, nil),
		"non-canonical s >= p":   lvCat(p, nil),
		"negative s":             lvCat(negative, nil),
		"all ones":               lvCat(bytes.Repeat([]byte{0xff}, 32), nil),
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			s, _, err := Start(Initiator, []byte("pw"), []byte("ci"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			isk, err := s.Finish(msg)
			if !errors.Is(err, ErrInvalidMessage) || isk != nil {
				t.Fatalf("Finish(%x) = %x, %v; want ErrInvalidMessage", msg, isk, err)
			}
			if s.PeerAD() != nil || s.Transcript() != nil {
				t.Fatal("failed Finish left peer data behind")
			}
		})
	}
	// Sanity: the unmodified message is accepted.
	s, _, err := Start(Initiator, []byte("pw"), []byte("ci"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(good); err != nil {
		t.Fatalf("valid message rejected: %v", err)
	}
}

func FuzzFinish(f *testing.F) {
	good := validMessage(f, []byte("ad"))
	f.Add(good)
	f.Add(validMessage(f, nil))
	f.Add(validMessage(f, bytes.Repeat([]byte{1}, 200)))
	f.Add([]byte{})
	f.Add([]byte{0x20})
	f.Add(lvCat(make([]byte, 32), nil))
	f.Add(lvCat(unhex(f, tvYi1), nil))
	f.Add(append(append([]byte{0x20}, good[1:33]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))
	f.Add(append(append([]byte{0xa0, 0x00}, good[1:33]...), 0x00))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _, err := startWithScalar(Initiator, []byte("pw"), []byte("ci"), nil, nil, unhex(t, tvYa_))
		if err != nil {
			t.Fatal(err)
		}
		isk, err := s.Finish(msg)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) || isk != nil {
				t.Fatalf("unexpected result %x, %v", isk, err)
			}
			return
		}
		if len(isk) != 64 {
			t.Fatalf("ISK length %d", len(isk))
		}
		// Every accepted message is the canonical encoding of what was parsed.
		Y, AD, ok := parseMessage(msg)
		if !ok || !bytes.Equal(lvCat(Y, AD), msg) || !bytes.Equal(s.PeerAD(), AD) {
			t.Fatalf("accepted non-canonical message %x", msg)
		}
	})
}
