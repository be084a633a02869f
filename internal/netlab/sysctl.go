package netlab

import (
	"os"
	"path/filepath"
	"testing"
)

// SetSysctls writes network sysctls inside the namespace, given as pairs
// of a key such as "net.ipv4.ip_forward" and a value, and fails t on
// error.
func (ns *Namespace) SetSysctls(t testing.TB, kv ...string) {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("SetSysctls: odd number of arguments %q", kv)
	}
	err := ns.Do(func() error {
		for i := 0; i < len(kv); i += 2 {
			p := filepath.Join("/proc/sys", filepath.FromSlash(dotsToSlashes(kv[i])))
			if err := os.WriteFile(p, []byte(kv[i+1]), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("sysctl in %s: %v", ns.Name, err)
	}
}

func dotsToSlashes(key string) string {
	b := []byte(key)
	for i, c := range b {
		if c == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}
