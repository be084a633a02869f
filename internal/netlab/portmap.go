package netlab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PortMapConfig configures StartPortMapper.
type PortMapConfig struct {
	// NATPMP enables NAT-PMP, and with it PCP: miniupnpd 2.3.1 serves
	// both on port 5351 under one switch (enable_natpmp).
	NATPMP bool
	// UPnP enables UPnP IGD (SSDP on the LAN and HTTP on the router's
	// LAN address).
	UPnP bool
	// STUN is a STUN server in the lab (in the internet namespace, on
	// ServerIP) that the daemon asks for its public address. It is
	// required: miniupnpd refuses a WAN address in a reserved range such
	// as the lab's 198.18.0.0/15, and 2.3.1 has no option to allow one.
	// The server must answer RFC 5780 CHANGE-REQUESTs (from AltServerIP
	// and from the port above STUN's): miniupnpd disables port
	// forwarding unless all four of its test requests are answered, as
	// it then believes an upstream NAT filters what it would forward.
	STUN netip.AddrPort
	// MinLifetime is the shortest lifetime the daemon grants, so tests
	// can watch renewals (miniupnpd's default is 120 s); zero means 1 s.
	MinLifetime time.Duration
}

// PortMapper is a miniupnpd running in a router's namespace.
type PortMapper struct {
	router *Router
	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	log    strings.Builder
}

// miniupnpdTable is the nftables table miniupnpd adds its rules to; its
// chains are made here, since the package's own nft_init.sh needs a
// functions file the package does not ship.
const miniupnpdTable = "miniupnpd"

// miniupnpdRuleset is the table miniupnpd expects: base chains for
// forward, nat prerouting and nat postrouting that jump to the chains
// miniupnpd fills.
const miniupnpdRuleset = `table inet miniupnpd
delete table inet miniupnpd
table inet miniupnpd {
  chain miniupnpd { }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
  chain forward {
    type filter hook forward priority filter; policy accept;
    jump miniupnpd
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
  }
}
`

// StartPortMapper runs miniupnpd (Debian package miniupnpd-nftables) in
// the router's namespace, serving the protocols cfg enables on the LAN
// side, and returns once it listens. Mappings become DNAT rules in the
// router's inet miniupnpd table (chain prerouting_miniupnpd), which the
// router's firewall admits (ct status dnat). The daemon is stopped, and
// its table deleted, when t ends. It skips t if miniupnpd is missing.
func (r *Router) StartPortMapper(t testing.TB, cfg PortMapConfig) *PortMapper {
	t.Helper()
	bin, err := exec.LookPath("miniupnpd")
	if err != nil {
		t.Skip("needs miniupnpd (Debian package miniupnpd-nftables) for port mapping tests")
	}
	if !cfg.STUN.IsValid() {
		t.Fatalf("StartPortMapper: a STUN server is required")
	}
	if !cfg.NATPMP && !cfg.UPnP {
		t.Fatalf("StartPortMapper: enable NAT-PMP or UPnP")
	}
	if cfg.MinLifetime <= 0 {
		cfg.MinLifetime = time.Second
	}
	r.NS.NFT(t, miniupnpdRuleset)
	// The daemon's STUN check (RFC 5780: requests that ask for answers
	// from another address and port) concludes that the router filters
	// incoming traffic, and disables port forwarding, unless those
	// answers reach it; the router's own firewall drops them as new
	// traffic from the WAN. Let in UDP from the lab's server addresses
	// to the router itself (not forwarded; it lasts until a Rebind
	// reloads the router's table).
	r.NS.NFT(t, fmt.Sprintf("insert rule ip %s input iifname \"wan\" ip saddr { %s, %s } meta l4proto udp accept\n", natTable, serverIP, altServerIP))
	dir := t.TempDir()
	conf := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(conf, []byte(miniupnpdConf(cfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	pm := &PortMapper{router: r, exited: make(chan struct{})}
	// -d: stay in the foreground and log to stderr, so the process is
	// ours to stop and nothing outlives the test.
	pm.cmd = exec.Command("ip", "netns", "exec", r.NS.Name, bin, "-d", "-f", conf, "-P", filepath.Join(dir, "miniupnpd.pid"))
	pm.cmd.SysProcAttr = dieWithParent()
	stderr, err := pm.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	pm.cmd.Stdout = pm.cmd.Stderr
	if err := pm.cmd.Start(); err != nil {
		t.Fatalf("starting miniupnpd: %v", err)
	}
	t.Cleanup(pm.stop)

	// Wait for the lines saying each enabled service listens (STUN has
	// run by then: the daemon learns its address first). For UPnP, "HTTP
	// listening" may come before the SSDP socket has joined its group,
	// and nothing is logged after that: see ssdpJoined below.
	want := map[string]bool{}
	if cfg.NATPMP {
		want["Listening for NAT-PMP/PCP traffic"] = true
	}
	if cfg.UPnP {
		want["HTTP listening on port"] = true
	}
	ready := make(chan struct{})
	go func() {
		defer close(pm.exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			pm.mu.Lock()
			pm.log.WriteString(line + "\n")
			for w := range want {
				if strings.Contains(line, w) {
					delete(want, w)
					if len(want) == 0 {
						close(ready)
					}
				}
			}
			pm.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = pm.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-pm.exited:
		t.Fatalf("miniupnpd exited before listening:\n%s", pm.Log())
	case <-time.After(10 * time.Second):
		t.Fatalf("miniupnpd did not start listening within 10 s:\n%s", pm.Log())
	}
	if cfg.UPnP {
		// The kernel shows the group membership as soon as the
		// daemon's setsockopt returns; there is no event to wait on.
		deadline := time.Now().Add(10 * time.Second)
		for !pm.ssdpJoined() {
			if time.Now().After(deadline) {
				t.Fatalf("miniupnpd did not join the SSDP group within 10 s:\n%s", pm.Log())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return pm
}

// ssdpJoined reports whether the router's LAN device is a member of the
// SSDP multicast group.
func (pm *PortMapper) ssdpJoined() bool {
	out, err := exec.Command("ip", "-n", pm.router.NS.Name, "maddr", "show", "dev", "lan").Output()
	return err == nil && strings.Contains(string(out), "239.255.255.250")
}

// miniupnpdConf renders the daemon's configuration (see the NAT lab
// notes: this is the configuration that answered in a router namespace).
func miniupnpdConf(cfg PortMapConfig) string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	return strings.Join([]string{
		"ext_ifname=wan",
		"listening_ip=lan",
		"http_port=0",
		"enable_natpmp=" + yes(cfg.NATPMP),
		"enable_upnp=" + yes(cfg.UPnP),
		"secure_mode=yes",
		"system_uptime=no",
		fmt.Sprintf("min_lifetime=%d", int(cfg.MinLifetime.Seconds())),
		"upnp_table_name=" + miniupnpdTable,
		"upnp_nat_table_name=" + miniupnpdTable,
		"upnp_forward_chain=miniupnpd",
		"upnp_nat_chain=prerouting_miniupnpd",
		"upnp_nat_postrouting_chain=postrouting_miniupnpd",
		"ext_perform_stun=yes",
		"ext_stun_host=" + cfg.STUN.Addr().String(),
		fmt.Sprintf("ext_stun_port=%d", cfg.STUN.Port()),
		"uuid=3a7b1c52-8b1e-4c1e-9f0a-7e0c5f6d2b11",
		"allow 1024-65535 10.0.0.0/8 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}, "\n") + "\n"
}

// Log returns what the daemon has logged so far, for test messages.
func (pm *PortMapper) Log() string {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.log.String()
}

// Stop stops the daemon (SIGTERM; it removes its rules as it exits) and
// waits for it, then deletes its table. Stopping twice is harmless; the
// test's cleanup calls it too.
func (pm *PortMapper) Stop(t testing.TB) {
	t.Helper()
	pm.stop()
}

func (pm *PortMapper) stop() {
	if pm.cmd.Process == nil {
		return
	}
	select {
	case <-pm.exited:
	default:
		_ = pm.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pm.exited:
		case <-time.After(5 * time.Second):
			_ = pm.cmd.Process.Kill()
			<-pm.exited
		}
	}
	_ = exec.Command("ip", "netns", "exec", pm.router.NS.Name, "nft", "delete", "table", "inet", miniupnpdTable).Run()
}

// Redirects lists the daemon's port forwards as nft prints them (one rule
// a line, from the prerouting_miniupnpd chain), such as
// `iif "wan" ... udp dport 40000 dnat ip to 10.1.0.2:40000`.
func (pm *PortMapper) Redirects(ctx context.Context, t testing.TB) []string {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", pm.router.NS.Name,
		"nft", "list", "chain", "inet", miniupnpdTable, "prerouting_miniupnpd").CombinedOutput()
	if err != nil {
		t.Fatalf("listing miniupnpd's rules: %v\n%s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.Contains(l, "dnat") {
			rules = append(rules, l)
		}
	}
	return rules
}
