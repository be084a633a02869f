package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartTraceWritesATrace: FERRY_TRACE's file holds a Go execution
// trace once stopped, and a path that cannot be created is reported, not
// fatal.
func TestStartTraceWritesATrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.trace")
	var stderr bytes.Buffer
	stop := startTrace(path, &stderr)
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Fatalf("trace file starts with %q, want a Go trace header", b[:min(len(b), 16)])
	}
	if stderr.Len() != 0 {
		t.Fatalf("stderr: %s", stderr.String())
	}

	stderr.Reset()
	startTrace(filepath.Join(t.TempDir(), "missing", "x.trace"), &stderr)()
	if !strings.Contains(stderr.String(), traceEnv) {
		t.Fatalf("an uncreatable trace file was not reported: %q", stderr.String())
	}
	startTrace("", &stderr)() // off: nothing to do
}
