//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// peersEnv is what a side-by-side report says about where and how it was
// measured.
type peersEnv struct {
	Date       string
	CPU        string
	CPUs       int
	Kernel     string
	Size       int64
	Rounds     int
	Versions   map[string]string
	Notes      []string
	LoadBefore string
	LoadAfter  string
}

func peersEnvironment(size int64, rounds int, versions map[string]string, notes []string) *peersEnv {
	return &peersEnv{
		Date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		CPU:        cpuModel(),
		CPUs:       runtime.NumCPU(),
		Kernel:     kernelRelease(),
		Size:       size,
		Rounds:     rounds,
		Versions:   versions,
		Notes:      notes,
		LoadBefore: loadAverage(),
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return runtime.GOOS + " " + strings.TrimSpace(string(b))
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// peerSummary is one tool's runs on one file.
type peerSummary struct {
	Tool, File                 string
	Runs                       int
	MeanMBps, MinMBps, MaxMBps float64
	SendCPU, RecvCPU, Flush    time.Duration // mean
	ServerCPU                  time.Duration // mean
	SendRSSKB, RecvRSSKB       int64         // max
}

// summarizePeers groups runs by file and tool, in the order first seen.
func summarizePeers(runs []peerRun) []peerSummary {
	var out []peerSummary
	index := map[string]int{}
	for _, r := range runs {
		k := r.File + "\x00" + r.Tool
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, peerSummary{Tool: r.Tool, File: r.File, MinMBps: r.MBps()})
		}
		s := &out[i]
		s.Runs++
		s.MeanMBps += r.MBps()
		s.MinMBps = min(s.MinMBps, r.MBps())
		s.MaxMBps = max(s.MaxMBps, r.MBps())
		s.SendCPU += r.SendCPU
		s.RecvCPU += r.RecvCPU
		s.Flush += r.Flush
		s.ServerCPU += r.ServerCPU
		s.SendRSSKB = max(s.SendRSSKB, r.SendRSSKB)
		s.RecvRSSKB = max(s.RecvRSSKB, r.RecvRSSKB)
	}
	for i := range out {
		n := out[i].Runs
		out[i].MeanMBps /= float64(n)
		out[i].SendCPU /= time.Duration(n)
		out[i].RecvCPU /= time.Duration(n)
		out[i].Flush /= time.Duration(n)
		out[i].ServerCPU /= time.Duration(n)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].File < out[b].File })
	return out
}

// peerDuel is ferry against one other tool on one file, round by round:
// the two runs of a round are minutes apart at most, so a machine whose
// speed drifts over a benchmark (a shared VM's does, by 20 % and more)
// slows both alike, which means over all runs do not show.
type peerDuel struct {
	File, Other string
	Rounds      int     // rounds in which both ran
	Faster      int     // rounds in which ferry's wall time was shorter
	MedianRatio float64 // median of the other tool's wall time over ferry's (above 1: ferry faster)
}

// duelPeers pairs ferry's runs with every other tool's (except the plain
// TCP copy, the ceiling rather than a peer) by round and file.
func duelPeers(runs []peerRun) []peerDuel {
	type round struct {
		n    int
		file string
	}
	ferry := map[round]time.Duration{} // ferry's wall time by round and file
	var order []peerDuel
	seen := map[[2]string]int{}
	for _, r := range runs {
		if r.Tool == "ferry" {
			ferry[round{r.Round, r.File}] = r.Wall
		}
		if r.Tool == "ferry" || r.Tool == "tcp-copy" {
			continue
		}
		if _, ok := seen[[2]string{r.File, r.Tool}]; !ok {
			seen[[2]string{r.File, r.Tool}] = len(order)
			order = append(order, peerDuel{File: r.File, Other: r.Tool})
		}
	}
	ratios := make([][]float64, len(order))
	for _, r := range runs {
		i, ok := seen[[2]string{r.File, r.Tool}]
		if !ok {
			continue
		}
		f, ok := ferry[round{r.Round, r.File}]
		if !ok || f <= 0 {
			continue
		}
		if f < r.Wall {
			order[i].Faster++
		}
		ratios[i] = append(ratios[i], r.Wall.Seconds()/f.Seconds())
	}
	for i := range order {
		rs := ratios[i]
		order[i].Rounds = len(rs)
		if len(rs) == 0 {
			continue
		}
		slices.Sort(rs)
		m := rs[len(rs)/2]
		if len(rs)%2 == 0 {
			m = (rs[len(rs)/2-1] + m) / 2
		}
		order[i].MedianRatio = m
	}
	sort.SliceStable(order, func(a, b int) bool { return order[a].File < order[b].File })
	return order
}

func sizeLabel(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// peersMarkdown is the report: conditions, a summary per tool and file,
// and every run.
func peersMarkdown(env *peersEnv, runs []peerRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s (%d CPUs, %s); %s per file, %d rounds; load average %s before, %s after.\n",
		env.Date, env.CPU, env.CPUs, env.Kernel, sizeLabel(env.Size), env.Rounds, env.LoadBefore, env.LoadAfter)
	var vs []string
	for k, v := range env.Versions {
		vs = append(vs, k+" "+v)
	}
	slices.Sort(vs)
	fmt.Fprintf(&b, "Versions: %s.\n", strings.Join(vs, ", "))
	for _, n := range env.Notes {
		fmt.Fprintf(&b, "Note: %s.\n", strings.TrimSpace(strings.SplitN(n, "\n", 2)[0]))
	}
	b.WriteString("\nMean of all runs (CPU: mean seconds per run, user+system; RSS: largest peak):\n\n")
	b.WriteString("| file | tool | runs | MB/s mean | MB/s min–max | fsync after exit s | CPU s send | CPU s receive | CPU s servers | peak RSS MB send | peak RSS MB receive |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range summarizePeers(runs) {
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f–%.0f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f |\n",
			s.File, s.Tool, s.Runs, s.MeanMBps, s.MinMBps, s.MaxMBps, s.Flush.Seconds(), s.SendCPU.Seconds(), s.RecvCPU.Seconds(), s.ServerCPU.Seconds(),
			float64(s.SendRSSKB)/1024, float64(s.RecvRSSKB)/1024)
	}
	if duels := duelPeers(runs); len(duels) > 0 {
		b.WriteString("\nHead to head, round by round (the two runs of a round are minutes apart at most; ratio: the other tool's wall time over ferry's, above 1 when ferry is faster):\n\n")
		b.WriteString("| file | ferry against | rounds | ferry faster in | median ratio |\n")
		b.WriteString("|---|---|---:|---:|---:|\n")
		for _, d := range duels {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %.2f |\n", d.File, d.Other, d.Rounds, d.Faster, d.MedianRatio)
		}
	}
	b.WriteString("\nEvery run, in the order run (wall: receiver start to exit; fsync after exit: the harness's fsync of the received file once the receiver exited; sender prep: sender start to code shown):\n\n")
	b.WriteString("| round | file | tool | wall s | MB/s | fsync after exit s | sender prep s | CPU s send | CPU s receive | CPU s servers | peak RSS MB send | peak RSS MB receive |\n")
	b.WriteString("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %d | %s | %s | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f |\n",
			r.Round, r.File, r.Tool, r.Wall.Seconds(), r.MBps(), r.Flush.Seconds(), r.Prep.Seconds(), r.SendCPU.Seconds(), r.RecvCPU.Seconds(), r.ServerCPU.Seconds(),
			float64(r.SendRSSKB)/1024, float64(r.RecvRSSKB)/1024)
	}
	return b.String()
}

// peersSVG draws a grouped horizontal bar chart: for each file, one bar per
// tool at its mean MB/s, with a tick at each run's MB/s.
func peersSVG(env *peersEnv, runs []peerRun) []byte {
	sums := summarizePeers(runs)
	var files, tools []string
	for _, s := range sums {
		if !slices.Contains(files, s.File) {
			files = append(files, s.File)
		}
		if !slices.Contains(tools, s.Tool) {
			tools = append(tools, s.Tool)
		}
	}
	maxV := 1.0
	for _, r := range runs {
		maxV = max(maxV, r.MBps())
	}
	// A round upper bound for the axis.
	step := 50.0
	for maxV/step > 8 {
		step *= 2
	}
	axisMax := step * float64(int(maxV/step)+1)

	colors := []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"}
	const (
		width  = 760
		left   = 150
		right  = 30
		top    = 56
		barH   = 18
		barGap = 4
		grpGap = 22
	)
	plotW := float64(width - left - right)
	groupH := len(tools)*(barH+barGap) + grpGap
	height := top + len(files)*groupH + 60
	x := func(v float64) float64 { return left + v/axisMax*plotW }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">Transfer of one %s file on loopback, MB/s (higher is better)</text>`+"\n", 10, html.EscapeString(sizeLabel(env.Size)))
	fmt.Fprintf(&b, `<text x="%d" y="40" fill="#555">%s; %d CPUs; %s; bars: mean of %d rounds, ticks: each run</text>`+"\n",
		10, html.EscapeString(env.Date), env.CPUs, html.EscapeString(env.CPU), env.Rounds)
	plotBottom := top + len(files)*groupH - grpGap + 6
	for v := 0.0; v <= axisMax+1e-9; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(v), top-4, x(v), plotBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%.0f</text>`+"\n", x(v), plotBottom+16, v)
	}
	for fi, f := range files {
		y0 := top + fi*groupH
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y0+barH-4, html.EscapeString(f))
		for ti, t := range tools {
			y := y0 + ti*(barH+barGap)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, y+barH-5, html.EscapeString(t))
			var s *peerSummary
			for i := range sums {
				if sums[i].File == f && sums[i].Tool == t {
					s = &sums[i]
				}
			}
			if s == nil {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#999">not run</text>`+"\n", left+4, y+barH-5)
				continue
			}
			color := colors[ti%len(colors)]
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, x(s.MeanMBps)-left, barH, color)
			for _, r := range runs {
				if r.File == f && r.Tool == t {
					fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222" stroke-width="1.5"/>`+"\n", x(r.MBps()), y-1, x(r.MBps()), y+barH+1)
				}
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%.0f</text>`+"\n", x(s.MaxMBps)+5, y+barH-5, s.MeanMBps)
		}
	}
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555">All processes in one network namespace with local servers only; see docs/BENCHMARKS.md.</text>`+"\n", height-12)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// TestDuelPeers: ferry's runs are paired with each other tool's of the same
// round and file; the TCP copy and rounds without both are left out.
func TestDuelPeers(t *testing.T) {
	run := func(round int, file, tool string, wall float64) peerRun {
		return peerRun{Round: round, File: file, Tool: tool, Wall: time.Duration(wall * float64(time.Second))}
	}
	runs := []peerRun{
		run(1, "random", "ferry", 4), run(1, "random", "magic-wormhole", 5), run(1, "random", "tcp-copy", 1),
		run(2, "random", "ferry", 6), run(2, "random", "magic-wormhole", 5),
		run(3, "random", "ferry", 4), run(3, "random", "magic-wormhole", 6),
		run(1, "text", "magic-wormhole", 5), // no ferry run in this round
		run(2, "text", "ferry", 5), run(2, "text", "magic-wormhole", 4), run(2, "text", "croc", 20),
	}
	got := duelPeers(runs)
	want := []peerDuel{
		{File: "random", Other: "magic-wormhole", Rounds: 3, Faster: 2, MedianRatio: 1.25},
		{File: "text", Other: "magic-wormhole", Rounds: 1, Faster: 0, MedianRatio: 0.8},
		{File: "text", Other: "croc", Rounds: 1, Faster: 1, MedianRatio: 4},
	}
	if len(got) != len(want) {
		t.Fatalf("duels: got %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.File != w.File || g.Other != w.Other || g.Rounds != w.Rounds || g.Faster != w.Faster || math.Abs(g.MedianRatio-w.MedianRatio) > 1e-9 {
			t.Errorf("duel %d: got %+v, want %+v", i, g, w)
		}
	}
}
