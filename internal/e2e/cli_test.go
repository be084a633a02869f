package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

func TestVersionAndUsage(t *testing.T) {
	out, err := exec.Command(ferryBinary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "ferry ") {
		t.Fatalf("ferry version: %q, %v", out, err)
	}
	out, err = exec.Command(ferryBinary, "help").Output()
	if err != nil || !strings.Contains(string(out), "ferry send") {
		t.Fatalf("ferry help: %q, %v", out, err)
	}
	out, err = exec.Command(ferryBinary, "frobnicate").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "Usage:") {
		t.Fatalf("unknown command: %v\n%s", err, out)
	}
}
