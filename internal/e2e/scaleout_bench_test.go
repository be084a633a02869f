package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"ferry/internal/redistest"
)

// Sizes of BenchmarkRendezvousScaleOut. A process may hold 20,000 file
// descriptors on this machine and cannot raise that: the pairings run in
// pairClients processes, and one server can hold at most about 9,000
// pairings (two connections each) at once.
const (
	scaleOutPairings = 10000 // across three instances, the number
	singlePairings   = 9000  // against one instance, as many as it can hold
	pairClients      = 4
)

// BenchmarkRendezvousScaleOut runs full pairings (PAKE, key confirmation,
// sealed offers, as ferry send and receive run them), all started at once,
// twice in one run: 10,000 against three `ferry rendezvous` instances
// sharing one real redis-server, with the two sides of every pairing on
// different instances, and 9,000 against one instance with its memory
// store. It reports pairings per second and the p50 and p99 time from a
// pairing's start until both sides are done, and Redis's peak memory. On
// two cores the three instances cannot add CPU: the point is correctness
// across instances and the cost of a pairing. The per-address code limit
// is lifted (every client is 127.0.0.1).
func BenchmarkRendezvousScaleOut(b *testing.B) {
	for range b.N {
		rs := redistest.StartServer(b)
		servers, cmds, _ := startScaleOut(b, rs.Addr(), 3, "--max-nameplates-per-ip", "-1")
		pids := []int{rs.Pid()}
		for _, cmd := range cmds {
			pids = append(pids, cmd.Process.Pid)
		}
		redis0, instances0 := procCPU(b, pids[0]), cpuOf(b, pids[1:])
		reportPairings(b, "redis", runPairings(b, servers, scaleOutPairings))
		// CPU per pairing: the three instances together, and Redis.
		b.ReportMetric(float64((cpuOf(b, pids[1:])-instances0).Microseconds())/scaleOutPairings, "redis-instances-cpu-us/pairing")
		b.ReportMetric(float64((procCPU(b, pids[0])-redis0).Microseconds())/scaleOutPairings, "redis-server-cpu-us/pairing")
		if peak, err := redisPeakMemory(rs.Addr()); err == nil {
			b.ReportMetric(float64(peak)/(1<<20), "redis-peak-MB")
		}

		one, cmd, _ := startRendezvousProcess(b, "--max-nameplates-per-ip", "-1", "--stun-alt-port", "-1")
		cpu := procCPU(b, cmd.Process.Pid)
		reportPairings(b, "memory", runPairings(b, []string{one}, singlePairings))
		b.ReportMetric(float64((procCPU(b, cmd.Process.Pid)-cpu).Microseconds())/singlePairings, "memory-cpu-us/pairing")
	}
	b.ReportMetric(0, "ns/op")
}

// Environment of a pairing client process (runPairClient).
const (
	pairClientEnv  = "FERRY_E2E_PAIR_CLIENT"  // "1": be a pairing client
	pairServersEnv = "FERRY_E2E_PAIR_SERVERS" // comma-separated server addresses
	pairCountEnv   = "FERRY_E2E_PAIR_COUNT"   // pairings to run
	pairFirstEnv   = "FERRY_E2E_PAIR_FIRST"   // the index of the first
)

// runPairClient is a pairing client process: it reads a line from stdin,
// then runs its pairings at once, the i-th with the sender on server i and
// the receiver on server i+1 (mod their number), and prints "ok NS" or
// "err MESSAGE" for each.
func runPairClient() int {
	servers := strings.Split(os.Getenv(pairServersEnv), ",")
	n, err1 := strconv.Atoi(os.Getenv(pairCountEnv))
	first, err2 := strconv.Atoi(os.Getenv(pairFirstEnv))
	if err1 != nil || err2 != nil || len(servers) == 0 {
		fmt.Fprintln(os.Stderr, "pair client: bad environment")
		return 2
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for i := first; i < first+n; i++ {
		wg.Go(func() {
			send, recv := servers[i%len(servers)], servers[(i+1)%len(servers)]
			t0 := time.Now()
			_, err := pairAcross(ctx, send, recv)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fmt.Fprintf(out, "err pairing %d (%s -> %s): %v\n", i, send, recv, strings.ReplaceAll(err.Error(), "\n", " "))
				return
			}
			fmt.Fprintf(out, "ok %d\n", d.Nanoseconds())
		})
	}
	wg.Wait()
	out.Flush()
	return 0
}

// cpuOf is the CPU time the processes used so far, together.
func cpuOf(b *testing.B, pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += procCPU(b, pid)
	}
	return sum
}

// pairingRun is what one batch of pairings measured.
type pairingRun struct {
	elapsed   time.Duration
	latencies []time.Duration
}

// runPairings runs total pairings at once through servers, spread over
// pairClients client processes, and fails b if any fails.
func runPairings(b *testing.B, servers []string, total int) pairingRun {
	b.Helper()
	type client struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   io.ReadCloser
	}
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	var clients []client
	per := total / pairClients
	for c := range pairClients {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), pairClientEnv+"=1", pairServersEnv+"="+strings.Join(servers, ","),
			pairCountEnv+"="+strconv.Itoa(per), pairFirstEnv+"="+strconv.Itoa(c*per))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		clients = append(clients, client{cmd, stdin, out})
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failed    []string
		wg        sync.WaitGroup
	)
	start := time.Now()
	for _, c := range clients {
		io.WriteString(c.stdin, "go\n")
		wg.Go(func() {
			sc := bufio.NewScanner(c.out)
			for sc.Scan() {
				line := sc.Text()
				mu.Lock()
				if ns, ok := strings.CutPrefix(line, "ok "); ok {
					v, _ := strconv.ParseInt(ns, 10, 64)
					latencies = append(latencies, time.Duration(v))
				} else {
					failed = append(failed, line)
				}
				mu.Unlock()
			}
			c.cmd.Wait()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(failed) > 0 || len(latencies) != per*pairClients {
		first := ""
		if len(failed) > 0 {
			first = failed[0]
		}
		b.Fatalf("%d of %d pairings completed, %d failed; the first: %s", len(latencies), per*pairClients, len(failed), first)
	}
	return pairingRun{elapsed: elapsed, latencies: latencies}
}

func reportPairings(b *testing.B, name string, r pairingRun) {
	slices.Sort(r.latencies)
	q := func(p float64) time.Duration { return r.latencies[int(p*float64(len(r.latencies)-1))] }
	b.ReportMetric(float64(len(r.latencies))/r.elapsed.Seconds(), name+"-pairings/s")
	b.ReportMetric(float64(q(0.5).Milliseconds()), name+"-p50-ms")
	b.ReportMetric(float64(q(0.99).Milliseconds()), name+"-p99-ms")
	b.Logf("%s: %d pairings in %v", name, len(r.latencies), r.elapsed.Round(time.Millisecond))
}

// redisPeakMemory reads used_memory_peak from the Redis at addr.
func redisPeakMemory(addr string) (int64, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.InfoMap(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(info["Memory"]["used_memory_peak"], 10, 64)
}
