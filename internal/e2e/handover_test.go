package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/internal/netlab"
)

// A transfer survives a change of network across NATs (issue 12): a
// sender and a receiver, each with two uplinks behind NATs of their own,
// move from one uplink to the other (or lose theirs, or have their NAT
// rebind) while a transfer runs. These tests run the real binaries in the
// NAT lab, check the file byte for byte and the path events each side
// reports, and measure how long the receiver's progress stood still.

// Timing of the scenarios, with the reasons for the values.
const (
	// handoverSize is the file each scenario sends: about 8 s at the lab's
	// 100 Mbit/s, so a change at a quarter leaves about 6 s to measure the
	// rate after the handover.
	handoverSize = 96 << 20
	// handoverRate shapes every link to the lab's internet: a home uplink,
	// slow enough that the transfer outlasts the change.
	handoverRate = "100mbit"
	// handoverBudget bounds one scenario, from starting the sender to both
	// sides' exits: the transfer, a 20 s outage and a minute of stall.
	handoverBudget = 3 * time.Minute
	// stallLimit fails a scenario whose receiver has moved no byte for this
	// long after a change: far beyond the targets (1-3 s), and the
	// transport's idle timeout (60 s), after which a transfer that still
	// stands still is not going to hand over. It turns an endless stall
	// into a failure that says so, instead of a kill at handoverBudget.
	stallLimit = 75 * time.Second
	// stallWindow is how soon after a change the receiver's progress must
	// stop for the stall to count as the change's: data in flight before
	// the change still arrives for a round trip or two, and a
	// make-before-break move may keep the old path a few seconds. A stall
	// that starts later is not the change's doing.
	stallWindow = 5 * time.Second
	// rateWindow is how long the mean rates before and after a change
	// average over.
	rateWindow = 10 * time.Second
	// sleepOutage is how long sleep-20s keeps the uplink down: a laptop
	// lid closed for a moment, longer than the transport's PING timeouts
	// and shorter than its idle timeout.
	sleepOutage = 20 * time.Second
	// handoverLabHosts caps the host pairs one lab holds (netlab allows
	// 254 hosts and 255 routers; each pair takes 2 hosts and 4 routers),
	// so that a long benchmark makes a new lab when one is full.
	handoverLabHosts = 60 * 2
)

const (
	// handoverStrictEnv=1 turns the handover targets into
	// assertions. Timing assertions do not belong in CI, so by default
	// they are only logged.
	handoverStrictEnv = "FERRY_HANDOVER_STRICT"
	// handoverVerboseEnv=1 runs both sides with --verbose, whose debug
	// logs a failure shows (the last lines of each side's stderr).
	handoverVerboseEnv = "FERRY_HANDOVER_VERBOSE"
	// handoverLogDirEnv names a directory where a failing scenario leaves
	// both sides' whole stderr.
	handoverLogDirEnv = "FERRY_HANDOVER_LOGDIR"
)

// scenario is one change of network during a transfer.
type scenario struct {
	name string
	// senderUplink1 is the NAT kind of the sender's second uplink;
	// default port-restricted like every other uplink.
	senderUplink1 netlab.NATKind
	// senderUplink1DropsUDP: the sender's second network passes no UDP
	// (a hotel or corporate network), so only TCP crosses it.
	senderUplink1DropsUDP bool
	// changes run one after the other; each after the one before it
	// handed over (progress resumed after a path event on both sides).
	changes []netChange
	// requirePath: each side must report at least one path event after
	// each change. Without it path events are allowed, not required.
	requirePath bool
	// reasons are the path-event reasons allowed after a change; default
	// moveReasons.
	reasons []string
	// firstReasons, if set, are the reasons allowed for each side's first
	// path event after a change: the way it left the path that died.
	firstReasons []string
	// senderPath, if set, is a path event (path and reason) the sender
	// must report after the last change.
	senderPath [2]string
	// finalPath is the path the transfer must end on, on both sides.
	finalPath string
	// target is the handover target, asserted only with
	// FERRY_HANDOVER_STRICT=1; zero for none.
	target time.Duration
	// flags are given to both sides.
	flags []string
}

// netChange is one step of a scenario.
type netChange struct {
	// name tells apart the changes of a scenario with several, in logs.
	name string
	// do makes the change, on the test's goroutine, and returns once it
	// is complete: for an outage, once the network is back.
	do func(ctx context.Context, tb testing.TB, send, recv *netlab.Host)
	// outage marks a change that takes the network away and gives it
	// back: its handover is measured from the moment the network came
	// back, its stall from the moment it went.
	outage bool
}

// moveReasons are the path-event reasons a side may report after its
// own or its peer's network changed.
var moveReasons = []string{"migrated", "reconnected", "fallback", "upgraded"}

// hostSide names the host a change acts on.
type hostSide struct {
	name string
	of   func(send, recv *netlab.Host) *netlab.Host
}

var (
	senderSide   = hostSide{"sender", func(send, _ *netlab.Host) *netlab.Host { return send }}
	receiverSide = hostSide{"receiver", func(_, recv *netlab.Host) *netlab.Host { return recv }}
)

// moveUplink moves who from uplink 0 to uplink 1, as a laptop moves from
// one network to another. With oldUp the old uplink stays up (make before
// break: only the default route moves); otherwise it goes down at the
// same moment (the Wi-Fi is gone).
func moveUplink(who hostSide, oldUp bool) netChange {
	return netChange{name: who.name + " moves", do: func(_ context.Context, tb testing.TB, send, recv *netlab.Host) {
		h := who.of(send, recv)
		if !oldUp {
			h.SetUplinkUp(tb, 0, false)
		}
		h.SwitchUplink(tb, 1)
	}}
}

// handoverScenarios are the scenarios of issue 12, run in this order.
var handoverScenarios = []scenario{
	{
		name:        "sender-moves-old-dead",
		changes:     []netChange{moveUplink(senderSide, false)},
		requirePath: true,
		finalPath:   "direct-udp",
		target:      3 * time.Second,
	},
	{
		name:        "sender-moves-old-up",
		changes:     []netChange{moveUplink(senderSide, true)},
		requirePath: true,
		finalPath:   "direct-udp",
		target:      time.Second,
	},
	{
		name:        "receiver-moves-old-dead",
		changes:     []netChange{moveUplink(receiverSide, false)},
		requirePath: true,
		finalPath:   "direct-udp",
		target:      3 * time.Second,
	},
	{
		name:        "both-move",
		changes:     []netChange{moveUplink(senderSide, false), moveUplink(receiverSide, false)},
		requirePath: true,
		finalPath:   "direct-udp",
		target:      3 * time.Second,
	},
	{
		// Without a relay the new address reaches the peer through the
		// rendezvous mailbox, where both sides meet again with the
		// pairing's keys.
		name:        "sender-moves-no-relay",
		changes:     []netChange{moveUplink(senderSide, false)},
		requirePath: true,
		// The punched TCP path may validate before the UDP one: the
		// transfer then moves to it and upgrades to UDP after. What
		// must not happen without a relay is a fallback.
		reasons:      []string{"migrated", "reconnected", "upgraded"},
		firstReasons: []string{"migrated", "reconnected"},
		finalPath:    "direct-udp",
		target:       3 * time.Second,
		flags:        []string{"--no-relay"},
	},
	{
		// Port-restricted facing symmetric cannot be punched: the
		// transfer goes on through the relay.
		name:          "to-symmetric",
		senderUplink1: netlab.Symmetric,
		changes:       []netChange{moveUplink(senderSide, false)},
		requirePath:   true,
		senderPath:    [2]string{"relay", "fallback"},
		finalPath:     "relay",
	},
	{
		// The new network drops UDP: the transfer goes on through the
		// relay, and moves to a TCP connection punched between the two
		// port-restricted NATs.
		name:                  "to-udp-blocked",
		senderUplink1DropsUDP: true,
		changes:               []netChange{moveUplink(senderSide, false)},
		requirePath:           true,
		senderPath:            [2]string{"direct-tcp", "upgraded"},
		finalPath:             "direct-tcp",
	},
	{
		// No move: the sender's NAT gives it a new public port. The
		// sender's own network did not change, so it may have nothing to
		// report; the receiver sees its peer move.
		name: "nat-rebinding",
		changes: []netChange{{name: "sender's NAT rebinds", do: func(_ context.Context, tb testing.TB, send, _ *netlab.Host) {
			send.Router(0).Rebind(tb)
		}}},
		reasons:   []string{"migrated", "fallback", "upgraded"},
		finalPath: "direct-udp",
	},
	{
		// The same network comes back with the same public address (the
		// router's mapping outlives 20 s of silence), so neither side
		// has to report a new path.
		name: "sleep-20s",
		changes: []netChange{{name: "sender sleeps", outage: true, do: func(ctx context.Context, tb testing.TB, send, _ *netlab.Host) {
			send.SetUplinkUp(tb, 0, false)
			// Not synchronisation: the outage is the scenario.
			outage := time.NewTimer(sleepOutage)
			defer outage.Stop()
			select {
			case <-outage.C:
			case <-ctx.Done():
				tb.Fatalf("scenario budget ran out during the %v outage", sleepOutage)
			}
			send.SetUplinkUp(tb, 0, true)
			// Bringing the device up does not restore the default route.
			send.SwitchUplink(tb, 0)
		}}},
		finalPath: "direct-udp",
	},
}

// TestNATHandover runs every scenario of issue 12 in one shaped lab, each
// with a new pair of hosts: the transfer completes byte-exact, both sides
// report the path events the contract asks for and end on the expected
// path. Handover times are logged; with FERRY_HANDOVER_STRICT=1 they are
// also held to the targets.
//
// One scenario: -run 'TestNATHandover/sender-moves-old-dead$'. All of them
// take under two minutes when every handover works; a scenario that stalls
// takes 70-150 s to fail (stallLimit), so give a failing run -timeout 20m.
func TestNATHandover(t *testing.T) {
	lab := newHandoverLab(t)
	for _, sc := range handoverScenarios {
		t.Run(sc.name, func(t *testing.T) {
			lab.handover(t, sc)
		})
	}
}

// BenchmarkNATHandover reports the handover time of a sender moving to
// its second uplink, with the old one dead and still up, over b.N
// transfers.
func BenchmarkNATHandover(b *testing.B) {
	for _, name := range []string{"sender-moves-old-dead", "sender-moves-old-up"} {
		i := slices.IndexFunc(handoverScenarios, func(sc scenario) bool { return sc.name == name })
		sc := handoverScenarios[i]
		b.Run(name, func(b *testing.B) {
			lab := newHandoverLab(b)
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				if lab.hosts+2 > handoverLabHosts {
					lab = newHandoverLab(b)
				}
				res := lab.handover(b, sc)
				if len(res.timings) == 0 {
					b.FailNow() // handover said why
				}
				total += res.timings[0].handover
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "handover-ms")
		})
	}
}

// handoverLab is a NAT lab with links shaped to handoverRate, `ferry
// rendezvous` in its internet, and the file every scenario sends.
type handoverLab struct {
	*natLab
	payload string
}

func newHandoverLab(tb testing.TB) *handoverLab {
	tb.Helper()
	lab := netlab.NewLab(tb, netlab.LabConfig{Rate: handoverRate})
	listen := netip.AddrPortFrom(lab.ServerIP(), 7887).String()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	addr, _ := startRendezvousCmd(tb, lab.Internet.Command(ctx, ferryBinary, "rendezvous", "--listen", listen), labListeningRE)
	payload := filepath.Join(tb.TempDir(), "payload.bin")
	writeRandomFile(tb, payload, handoverSize)
	return &handoverLab{natLab: &natLab{Lab: lab, rendezvous: addr}, payload: payload}
}

// handoverResult is what one scenario run saw.
type handoverResult struct {
	send, recv *ferryProc
	// timings has one entry per change of the scenario.
	timings []handoverTiming
}

// changeRun is one change and when it ran.
type changeRun struct {
	change netChange
	began  time.Time // the change started
	at     time.Time // the change was complete: T
}

// handover runs sc: a new sender and receiver, each with two uplinks,
// start a transfer of handoverSize bytes with the real binaries; when the
// receiver has a quarter, the scenario's changes run one after the other.
// Both sides must exit 0 within handoverBudget with the file intact, and
// report the path events sc asks for. It logs, and returns, the handover
// measured for each change.
func (l *handoverLab) handover(tb testing.TB, sc scenario) handoverResult {
	tb.Helper()
	portRestricted := netlab.NATSpec{Kind: netlab.PortRestricted}
	up1 := portRestricted
	if sc.senderUplink1 != 0 {
		up1 = netlab.NATSpec{Kind: sc.senderUplink1}
	}
	up1.DropUDP = sc.senderUplink1DropsUDP
	l.hosts += 2
	send := l.AddHost(tb, fmt.Sprintf("s%d", l.hosts), portRestricted, up1)
	recv := l.AddHost(tb, fmt.Sprintf("r%d", l.hosts), portRestricted, portRestricted)
	for _, h := range []*netlab.Host{send, recv} {
		// The lab is IPv4 only. A new device's IPv6 link-local address
		// is listed only once duplicate address detection is done, about
		// 1 s after the device comes up: ferry's address poll would see
		// that as a network change on both sides, mid-transfer, right
		// when the scenario's change runs.
		h.NS.SetSysctls(tb, "net.ipv6.conf.all.disable_ipv6", "1", "net.ipv6.conf.default.disable_ipv6", "1")
	}

	// Ending ctx kills both sides, also when tb fails part way.
	ctx, cancel := context.WithTimeout(context.Background(), handoverBudget)
	defer cancel()
	out := tb.TempDir()
	args := func(verb string) []string {
		a := append([]string{verb, "--json", "--no-lan"}, sc.flags...)
		if os.Getenv(handoverVerboseEnv) == "1" {
			a = append(a, "--verbose")
		}
		return a
	}
	s := startFerryCmd(tb, send.NS.Command(ctx, ferryBinary, append(args("send"), "--rendezvous", l.rendezvous, l.payload)...))
	code := s.waitEvent(tb, "the code", func(e jsonEvent) bool { return e.Event == "code" }).Code
	r := startFerryCmd(tb, recv.NS.Command(ctx, ferryBinary, append(args("receive"), "--yes", "--out", out, "--rendezvous", l.rendezvous, code)...))
	r.waitEvent(tb, "a quarter of the file", func(e jsonEvent) bool { return e.Event == "progress" && e.Bytes >= handoverSize/4 })
	// A move is only a handover if there was a direct path to move.
	for _, p := range bothSides(s, r) {
		if ev, _ := p.find("connected"); ev.Path != "direct-udp" {
			tb.Fatalf("the %s connected on %q before the change; the scenario needs direct-udp", p.name, ev.Path)
		}
	}

	// fail stops both sides, so that their stderr can be read, and fails
	// tb with err, the handovers measured so far and the stderr.
	runs := make([]changeRun, 0, len(sc.changes))
	fail := func(err error) {
		tb.Helper()
		cancel()
		<-s.done
		<-r.done
		reportHandovers(tb, sc, s, r, runs, false)
		if dir := os.Getenv(handoverLogDirEnv); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, sc.name+".send.log"), []byte(s.stderr.String()), 0o644)
			_ = os.WriteFile(filepath.Join(dir, sc.name+".receive.log"), []byte(r.stderr.String()), 0o644)
		}
		tb.Fatalf("%s: %v\nsend stderr:\n%s\nreceive stderr:\n%s", sc.name, err, lastLines(s.stderr.String(), 30), lastLines(r.stderr.String(), 30))
	}
	for i, c := range sc.changes {
		if i > 0 {
			if err := waitHandedOver(ctx, s, r, runs[i-1]); err != nil {
				fail(err)
			}
		}
		run := changeRun{change: c, began: time.Now()}
		c.do(ctx, tb, send, recv)
		run.at = time.Now()
		runs = append(runs, run)
	}
	if err := waitExits(ctx, s, r, runs[len(runs)-1]); err != nil {
		fail(err)
	}
	if err := sameFile(l.payload, filepath.Join(out, "payload.bin")); err != nil {
		tb.Fatal(err)
	}
	// The received copy is no longer needed: keep a long benchmark's disk
	// use to one copy.
	os.RemoveAll(out)

	res := handoverResult{send: s, recv: r, timings: reportHandovers(tb, sc, s, r, runs, true)}
	if sc.senderPath[0] != "" && !slices.ContainsFunc(pathEvents(s, runs[len(runs)-1].began, time.Time{}), func(e jsonEvent) bool {
		return e.Path == sc.senderPath[0] && e.Reason == sc.senderPath[1]
	}) {
		tb.Errorf("%s: the sender never reported path %q with reason %q after the change", sc.name, sc.senderPath[0], sc.senderPath[1])
	}
	for _, p := range bothSides(s, r) {
		if got := finalPath(p.ferryProc); got != sc.finalPath {
			tb.Errorf("%s: the %s ended on %q, want %q", sc.name, p.name, got, sc.finalPath)
		}
	}
	return res
}

// reportHandovers measures and logs the handover after each change that
// ran, with both sides' path events and the receiver's rates. Once the
// transfer is complete it also holds them to the scenario's contract
// (and, with FERRY_HANDOVER_STRICT=1, to its target), and a change it
// cannot measure is an error; before that (a failed run) it only logs.
func reportHandovers(tb testing.TB, sc scenario, s, r *ferryProc, runs []changeRun, complete bool) []handoverTiming {
	tb.Helper()
	progress := eventsOf(r, "progress")
	strict := os.Getenv(handoverStrictEnv) == "1"
	var timings []handoverTiming
	for i, run := range runs {
		end := time.Time{}
		if i+1 < len(runs) {
			end = runs[i+1].began
		}
		label := sc.name
		if len(sc.changes) > 1 {
			label += "/" + strings.ReplaceAll(run.change.name, " ", "-")
		}
		m, err := measureHandover(progress, run, end)
		if err != nil {
			if complete {
				tb.Errorf("%s: %v", label, err)
			} else {
				tb.Logf("handover %s: none: %v", label, err)
			}
			continue
		}
		timings = append(timings, m)
		tb.Logf("handover %s: %d ms (stall %d ms)", label, m.handover.Milliseconds(), m.stall.Milliseconds())
		tb.Logf("  sender path events: %s", describePaths(s, run, end))
		tb.Logf("  receiver path events: %s", describePaths(r, run, end))
		tb.Logf("  rate after move: %s, before: %s", meanRate(m.rateAfter, m.spanAfter), meanRate(m.rateBefore, m.spanBefore))
		if m.seamless {
			tb.Logf("  no progress event stood still: the handover is within the measurement's resolution")
		}
		if !complete {
			continue
		}
		if strict && sc.target > 0 && m.handover > sc.target {
			tb.Errorf("%s: handover took %v, the target is under %v", label, m.handover.Round(time.Millisecond), sc.target)
		}
		checkPathEvents(tb, sc, label, s, r, run, end)
	}
	return timings
}

// namedProc is a side of a transfer with its name for messages.
type namedProc struct {
	name string
	*ferryProc
}

// bothSides lists the sender, then the receiver.
func bothSides(s, r *ferryProc) []namedProc {
	return []namedProc{{"sender", s}, {"receiver", r}}
}

// checkPathEvents holds the path events both sides reported after a
// change (from its start until end, zero for the end of the transfer) to
// the scenario's contract.
func checkPathEvents(tb testing.TB, sc scenario, label string, s, r *ferryProc, run changeRun, end time.Time) {
	tb.Helper()
	reasons := sc.reasons
	if reasons == nil {
		reasons = moveReasons
	}
	for _, p := range bothSides(s, r) {
		evs := pathEvents(p.ferryProc, run.began, end)
		if sc.requirePath && len(evs) == 0 {
			tb.Errorf("%s: the %s reported no path event after the change", label, p.name)
		}
		if len(evs) > 0 && sc.firstReasons != nil && !slices.Contains(sc.firstReasons, evs[0].Reason) {
			tb.Errorf("%s: the %s's first path event was %q with reason %q, want one of %v", label, p.name, evs[0].Path, evs[0].Reason, sc.firstReasons)
		}
		for _, e := range evs {
			if !slices.Contains(reasons, e.Reason) {
				tb.Errorf("%s: the %s reported path %q with reason %q, want one of %v", label, p.name, e.Path, e.Reason, reasons)
			}
		}
	}
}

// waitHandedOver waits until the change that ran at run handed over: both
// sides reported a path event since it began and the receiver's bytes grew
// after both. It fails if either side exits first, if the receiver stands
// still for stallLimit, or if ctx ends.
func waitHandedOver(ctx context.Context, s, r *ferryProc, run changeRun) error {
	handedOver := func() bool {
		last := time.Time{}
		for _, p := range []*ferryProc{s, r} {
			evs := pathEvents(p, run.began, time.Time{})
			if len(evs) == 0 {
				return false
			}
			if evs[0].At.After(last) {
				last = evs[0].At
			}
		}
		return newProgressSeries(eventsOf(r, "progress")).growsAfter(0, last) >= 0
	}
	return watchTransfer(ctx, s, r, run, "the handover after the change ("+run.change.name+")", handedOver, true)
}

// waitExits waits until both sides exited 0. It fails early if the
// receiver's progress stands still for stallLimit after the last change.
func waitExits(ctx context.Context, s, r *ferryProc, last changeRun) error {
	exited := func() bool {
		for _, p := range []*ferryProc{s, r} {
			select {
			case <-p.done:
			default:
				return false
			}
		}
		return true
	}
	if err := watchTransfer(ctx, s, r, last, "both sides to exit", exited, false); err != nil {
		return err
	}
	if s.exit != 0 || r.exit != 0 {
		return fmt.Errorf("exit: send %d, receive %d; %s", s.exit, r.exit, stallReport(r, last))
	}
	return nil
}

// watchTransfer waits, bounded by ctx, until ok holds, checking it each
// time the sender or the receiver reports an event or exits. It fails if
// ctx ends, if the receiver's bytes do not grow for stallLimit (counted
// from the call, which follows the change at run), or, with exitFails, if
// either side exits first.
func watchTransfer(ctx context.Context, s, r *ferryProc, run changeRun, what string, ok func() bool, exitFails bool) error {
	// A deadline, not synchronisation: it only turns a stall into a
	// failure that says so.
	stalled := time.NewTimer(stallLimit)
	defer stalled.Stop()
	level := newProgressSeries(eventsOf(r, "progress")).max
	sDone, rDone := s.done, r.done
	for !ok() {
		select {
		case <-s.notify:
		case <-r.notify:
		case <-sDone:
			sDone = nil
		case <-rDone:
			rDone = nil
		case <-stalled.C:
			return fmt.Errorf("waiting for %s: the receiver moved no byte for %v; %s", what, stallLimit, stallReport(r, run))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: the scenario's %v ran out; %s", what, handoverBudget, stallReport(r, run))
		}
		if exitFails && (sDone == nil || rDone == nil) && !ok() {
			return fmt.Errorf("waiting for %s: a side exited (send %d, receive %d); %s", what, s.exit, r.exit, stallReport(r, run))
		}
		if l := newProgressSeries(eventsOf(r, "progress")).max; l > level {
			level = l
			stalled.Reset(stallLimit)
		}
	}
	return nil
}

// stallReport says when the receiver's bytes last grew relative to the
// change at run, and what it reported about paths since, for failure
// messages.
func stallReport(r *ferryProc, run changeRun) string {
	p := newProgressSeries(eventsOf(r, "progress"))
	if len(p.evs) == 0 {
		return "the receiver reported no progress"
	}
	i := p.lastGrowth(len(p.evs))
	last := p.evs[len(p.evs)-1]
	return fmt.Sprintf("the receiver's bytes last grew %s the change (%s), to %d of %d, and stood still for the %v to its last progress event; its path events since the change: %s",
		relT(p.evs[i].At, run.at), run.change.name, p.evs[i].Bytes, last.Total, last.At.Sub(p.evs[i].At).Round(time.Millisecond),
		describePaths(r, run, time.Time{}))
}

// handoverTiming is the handover after one change, measured from the
// receiver's progress events. Those come at most every 250 ms, and in
// practice often 500 ms apart (the transfer ticks every 250 ms and --json
// drops a tick that comes a hair early), and carry the time the test read
// them: every duration here is good to 250-500 ms, and a seamless handover
// measures about one progress interval, not zero.
type handoverTiming struct {
	// t0 is the last progress event before the stall whose bytes grew;
	// t1 the first after the stall whose bytes grew past it.
	t0, t1 time.Time
	// seamless: no progress event after the change stood still.
	seamless bool
	// handover is t1 - t0; for an outage, t1 - T (the network back).
	handover time.Duration
	// stall is t1 - t0: how long the receiver moved no byte, outage
	// included.
	stall time.Duration
	// rateBefore is the receiver's mean rate (bytes/s) over the
	// rateWindow before the change began, rateAfter over the rateWindow
	// from t1 (both cut short by the transfer's start, end or the next
	// change), and the spans they were measured over.
	rateBefore, rateAfter float64
	spanBefore, spanAfter time.Duration
}

// measureHandover measures the handover after the change at run from the
// receiver's progress events, looking no further than end (zero: to the
// end of the transfer).
//
// With T the moment the change was complete: the stall is the first
// progress event that did not grow, after the change began and no later
// than stallWindow after T. Events that still grow between the change and
// the stall count data that was in flight, not a handover. t0 is the last
// event that grew before the stall, t1 the first after T (and the stall)
// that grew. Without such a stall (the bytes never stood still for a whole
// progress interval) t0 is the last event that grew up to T, and t1 the
// first after T whose bytes exceed those at T.
func measureHandover(evs []jsonEvent, run changeRun, end time.Time) (handoverTiming, error) {
	if !end.IsZero() {
		evs = slices.DeleteFunc(slices.Clone(evs), func(e jsonEvent) bool { return !e.At.Before(end) })
	}
	var m handoverTiming
	p := newProgressSeries(evs)
	if len(evs) == 0 {
		return m, fmt.Errorf("the receiver reported no progress")
	}
	total := evs[0].Total
	stall := -1
	for i, e := range evs {
		if i == 0 || !e.At.After(run.began) || e.Bytes >= total {
			continue
		}
		if e.At.After(run.at.Add(stallWindow)) {
			break
		}
		if !p.grew[i] {
			stall = i
			break
		}
	}
	// atT is the last event read up to T.
	atT := 0
	for atT+1 < len(evs) && !evs[atT+1].At.After(run.at) {
		atT++
	}
	var i0, i1 int
	if stall >= 0 {
		i0 = p.lastGrowth(stall)
		if i1 = p.growsAfter(stall, run.at); i1 < 0 {
			return m, fmt.Errorf("no progress after the change: the receiver's bytes stood at %d of %d from %s it on", evs[i0].Bytes, total, relT(evs[i0].At, run.at))
		}
	} else {
		m.seamless = true
		i0 = p.lastGrowth(atT + 1)
		i1 = slices.IndexFunc(evs, func(e jsonEvent) bool { return e.At.After(run.at) && e.Bytes > evs[atT].Bytes })
		if i1 < 0 {
			return m, fmt.Errorf("no progress event after the change")
		}
	}
	m.t0, m.t1 = evs[i0].At, evs[i1].At
	m.stall = m.t1.Sub(m.t0)
	m.handover = m.stall
	if run.change.outage {
		m.handover = m.t1.Sub(run.at)
	}
	m.rateBefore, m.spanBefore = p.rate(run.began.Add(-rateWindow), run.began)
	m.rateAfter, m.spanAfter = p.rate(m.t1, m.t1.Add(rateWindow))
	return m, nil
}

// progressSeries is the receiver's progress events in the order read,
// with which of them grew: moved past every earlier event's bytes (after a
// reconnect the receiver may count again from a resumed offset, so a
// later event can report fewer bytes than an earlier one).
type progressSeries struct {
	evs  []jsonEvent
	grew []bool
	// max is the most bytes any event reported, -1 without events.
	max int64
}

func newProgressSeries(evs []jsonEvent) progressSeries {
	p := progressSeries{evs: evs, grew: make([]bool, len(evs)), max: -1}
	for i, e := range evs {
		p.grew[i] = i > 0 && e.Bytes > p.max
		p.max = max(p.max, e.Bytes)
	}
	return p
}

// lastGrowth is the index of the last event before i that grew, or 0.
func (p progressSeries) lastGrowth(i int) int {
	for i--; i > 0; i-- {
		if p.grew[i] {
			return i
		}
	}
	return 0
}

// growsAfter is the index of the first event from i on, read after at,
// that grew; -1 if none.
func (p progressSeries) growsAfter(i int, at time.Time) int {
	for ; i < len(p.evs); i++ {
		if p.grew[i] && p.evs[i].At.After(at) {
			return i
		}
	}
	return -1
}

// rate is the mean rate in bytes/s between the first event read at or
// after from and the last read at or before to, and the span between
// them; zero when fewer than two events fall between.
func (p progressSeries) rate(from, to time.Time) (float64, time.Duration) {
	a := slices.IndexFunc(p.evs, func(e jsonEvent) bool { return !e.At.Before(from) })
	b := -1
	for i, e := range p.evs {
		if !e.At.After(to) {
			b = i
		}
	}
	if a < 0 || b <= a {
		return 0, 0
	}
	span := p.evs[b].At.Sub(p.evs[a].At)
	return float64(p.evs[b].Bytes-p.evs[a].Bytes) / span.Seconds(), span
}

// meanRate writes a rate in MB/s with the span it was measured over, or
// says there was none (the next change came first, or the transfer ended).
func meanRate(rate float64, span time.Duration) string {
	if span == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB/s (over %.1f s)", rate/1e6, span.Seconds())
}

// eventsOf returns p's events of kind so far.
func eventsOf(p *ferryProc, kind string) []jsonEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []jsonEvent
	for _, e := range p.events {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// pathEvents returns p's path events read after from and before to (zero:
// no end).
func pathEvents(p *ferryProc, from, to time.Time) []jsonEvent {
	return slices.DeleteFunc(eventsOf(p, "path"), func(e jsonEvent) bool {
		return !e.At.After(from) || !to.IsZero() && !e.At.Before(to)
	})
}

// describePaths lists p's path events after the change at run (until
// end), each with its time relative to T.
func describePaths(p *ferryProc, run changeRun, end time.Time) string {
	evs := pathEvents(p, run.began, end)
	if len(evs) == 0 {
		return "none"
	}
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprintf("%s %s (%s) peer %s", relT(e.At, run.at), e.Path, e.Reason, e.Peer)
	}
	return strings.Join(parts, "; ")
}

// relT writes at relative to T, such as "+1.25s after" or "0.10s
// before".
func relT(at, t time.Time) string {
	d := at.Sub(t)
	if d < 0 {
		return fmt.Sprintf("%.2fs before", -d.Seconds())
	}
	return fmt.Sprintf("%.2fs after", d.Seconds())
}

// TestHandoverMeasure checks measureHandover on made-up progress events
// (no lab needed): one every 250 ms, 1 MB each while data flows.
func TestHandoverMeasure(t *testing.T) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return base.Add(time.Duration(n) * time.Millisecond) }
	// series makes one event every 250 ms from 0 ms, with the bytes of
	// each step: the total is far away.
	series := func(bytes ...int64) []jsonEvent {
		evs := make([]jsonEvent, len(bytes))
		for i, b := range bytes {
			evs[i] = jsonEvent{Event: "progress", Bytes: b << 20, Total: 1 << 40, At: ms(250 * i)}
		}
		return evs
	}
	cases := []struct {
		name     string
		evs      []jsonEvent
		run      changeRun
		handover time.Duration
		stall    time.Duration
		seamless bool
	}{{
		// Change at 1100 ms; 1250 ms still shows data in flight, then
		// nothing until 2500 ms.
		name:     "stall after data in flight",
		evs:      series(0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 6, 7, 8),
		run:      changeRun{began: ms(1100), at: ms(1101)},
		handover: 1250 * time.Millisecond, // 1250 ms to 2500 ms
		stall:    1250 * time.Millisecond,
	}, {
		name:     "seamless",
		evs:      series(0, 1, 2, 3, 4, 5, 6, 7, 8),
		run:      changeRun{began: ms(1100), at: ms(1101)},
		handover: 250 * time.Millisecond, // 1000 ms to 1250 ms
		stall:    250 * time.Millisecond,
		seamless: true,
	}, {
		// Down from 1100 ms to 3100 ms; data again at 3500 ms.
		name:     "outage",
		evs:      series(0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6),
		run:      changeRun{change: netChange{outage: true}, began: ms(1100), at: ms(3100)},
		handover: 400 * time.Millisecond,  // 3100 ms to 3500 ms
		stall:    2500 * time.Millisecond, // 1000 ms to 3500 ms
	}, {
		// After a reconnect the receiver counts again from a resumed
		// offset below what it had: progress resumes only past 5.
		name:     "resumed below the old level",
		evs:      series(0, 1, 2, 3, 4, 5, 5, 5, 3, 4, 5, 6, 7),
		run:      changeRun{began: ms(1100), at: ms(1101)},
		handover: 1500 * time.Millisecond, // 1250 ms to 2750 ms
		stall:    1500 * time.Millisecond,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := measureHandover(c.evs, c.run, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if m.handover != c.handover || m.stall != c.stall || m.seamless != c.seamless {
				t.Errorf("handover %v, stall %v, seamless %v; want %v, %v, %v", m.handover, m.stall, m.seamless, c.handover, c.stall, c.seamless)
			}
			if m.rateBefore != 1<<20*4 {
				t.Errorf("rate before %v B/s, want 4 MiB/s", m.rateBefore)
			}
		})
	}
	t.Run("no resume", func(t *testing.T) {
		_, err := measureHandover(series(0, 1, 2, 3, 4, 5, 5, 5), changeRun{began: ms(1100), at: ms(1101)}, time.Time{})
		if err == nil {
			t.Fatal("a stall that never ends measured as a handover")
		}
	})
	t.Run("until the next change", func(t *testing.T) {
		// A second stall from 2500 ms belongs to the next change, at
		// 2400 ms; the first change was seamless.
		evs := series(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 11)
		m, err := measureHandover(evs, changeRun{began: ms(1100), at: ms(1101)}, ms(2400))
		if err != nil || !m.seamless {
			t.Fatalf("%+v, %v; want a seamless handover", m, err)
		}
	})
}
