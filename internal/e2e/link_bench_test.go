//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"ferry/internal/netlab"
)

// The two ends of the limited link, in the benchmarking range 198.18.0.0/15;
// the namespaces holding them are not linked to the host.
const (
	linkHostA = "198.18.0.1"
	linkHostB = "198.18.0.2"
)

// linkListeningRE finds the rendezvous server's address in namespace A in
// its log.
var linkListeningRE = regexp.MustCompile(`tcp=(198\.18\.0\.1:\d+)`)

// linkBenchSize is what each limited-link benchmark moves: 256 MiB, or
// FERRY_BENCH_LINK_MB mebibytes for a quick run.
func linkBenchSize(tb testing.TB) int64 {
	tb.Helper()
	v := os.Getenv("FERRY_BENCH_LINK_MB")
	if v == "" {
		return 256 << 20
	}
	mb, err := strconv.ParseInt(v, 10, 64)
	if err != nil || mb <= 0 {
		tb.Fatalf("FERRY_BENCH_LINK_MB=%q: want a positive number of MiB", v)
	}
	return mb << 20
}

// BenchmarkLimitedLink moves one file with the real ferry binary over a
// rate-limited link, where compression pays off: two network namespaces
// joined by a veth pair whose two ends are shaped to the same rate with a
// token-bucket qdisc. The rendezvous server and the sender run in one
// namespace, the receiver in the other, so every byte crosses the limited
// link. Random data shows the link's ceiling; word-salad text, real text
// (Go sources) and web-server access logs show what compression gains.
// Each variant reads the source file and writes and fsyncs the
// destination; wire/size is what the sender put on the wire over the
// file's size. Needs root (it skips otherwise). Run with
//
//	go test -run XXX -bench LimitedLink -benchtime 1x ./internal/e2e/
//
// and FERRY_BENCH_LINK_MB=16 for a quick check instead of 256 MiB per file.
func BenchmarkLimitedLink(b *testing.B) {
	netlab.RequireRoot(b)
	size := linkBenchSize(b)
	dir := b.TempDir()
	kinds := []struct {
		name  string
		write func(testing.TB, string, int64)
	}{
		{"random", writeRandomFile},
		{"text", writeTextLike},
		{"code", writeSourceText},
		{"logs", writeLogLike},
	}
	// Each file is written the first time a sub-benchmark needs it and
	// shared by both rates.
	written := map[string]string{}
	source := func(b *testing.B, name string, write func(testing.TB, string, int64)) string {
		if p, ok := written[name]; ok {
			return p
		}
		p := filepath.Join(dir, name)
		write(b, p, size)
		written[name] = p
		return p
	}
	for _, rate := range []string{"100mbit", "1gbit"} {
		b.Run(rate, func(b *testing.B) {
			a, bns := netlab.NewNamespace(b), netlab.NewNamespace(b)
			devA, devB := netlab.Connect(b, a, bns, linkHostA+"/24", linkHostB+"/24")
			a.LimitRate(b, devA, rate)
			bns.LimitRate(b, devB, rate)
			// The plain TCP copy of the random file: the link's
			// practical ceiling, to compare ferry's random run with.
			b.Run("tcp-copy-random", func(b *testing.B) {
				src := source(b, "random", writeRandomFile)
				b.SetBytes(size)
				for i := range b.N {
					out := filepath.Join(b.TempDir(), fmt.Sprintf("out-%d", i))
					if err := os.MkdirAll(out, 0o755); err != nil {
						b.Fatal(err)
					}
					tcpCopyBetween(b, a, bns, linkHostB, src, out)
					b.StopTimer()
					if err := sameFile(src, filepath.Join(out, filepath.Base(src))); err != nil {
						b.Fatalf("received file: %v", err)
					}
					os.RemoveAll(out)
					b.StartTimer()
				}
			})
			for _, k := range kinds {
				b.Run(k.name, func(b *testing.B) {
					src := source(b, k.name, k.write)
					rv := a.Command(b.Context(), ferryBinary, "rendezvous", "--listen", linkHostA+":0")
					addr, _ := startRendezvousCmd(b, rv, linkListeningRE)
					b.SetBytes(size)
					var wire int64
					b.ResetTimer()
					for i := range b.N {
						out := filepath.Join(b.TempDir(), fmt.Sprintf("out-%d", i))
						if err := os.MkdirAll(out, 0o755); err != nil {
							b.Fatal(err)
						}
						wire = linkCopy(b, a, bns, addr, src, out)
						b.StopTimer()
						if err := sameFile(src, filepath.Join(out, filepath.Base(src))); err != nil {
							b.Fatalf("received file: %v", err)
						}
						os.RemoveAll(out)
						b.StartTimer()
					}
					b.ReportMetric(float64(wire)/float64(size), "wire/size")
				})
			}
		})
	}
}

// linkCopy runs `ferry send` in namespace a and `ferry receive` in
// namespace bns, pairing through the rendezvous server at addr, and
// returns the wire bytes the sender reported.
func linkCopy(b *testing.B, a, bns *netlab.Namespace, addr, src, out string) int64 {
	b.Helper()
	ctx := b.Context()
	flags := func(host string) []string {
		return []string{"--json", "--no-lan", "--rendezvous", addr, "--listen", host + ":0"}
	}
	send := startFerryCmd(b, a.Command(ctx, ferryBinary, append(append([]string{"send"}, flags(linkHostA)...), src)...))
	c := send.waitEvent(b, "the code", func(e jsonEvent) bool { return e.Event == "code" })
	recv := startFerryCmd(b, bns.Command(ctx, ferryBinary, append(append([]string{"receive"}, flags(linkHostB)...), "--yes", "--out", out, c.Code)...))
	if code := recv.wait(b); code != 0 {
		b.Fatalf("receive exited %d: %s", code, recv.stderr.String())
	}
	if code := send.wait(b); code != 0 {
		b.Fatalf("send exited %d: %s", code, send.stderr.String())
	}
	d, ok := send.find("done")
	if !ok {
		b.Fatalf("sender reported no done event; stderr:\n%s", send.stderr.String())
	}
	return d.WireBytes
}
