package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"ferry/transport"
)

// TestRelayFlags: --no-relay and --relay-only choose the path policy, and
// the combinations that cannot work are usage errors that name the problem.
func TestRelayFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want transport.PathPolicy
	}{
		{nil, transport.AnyPath},
		{[]string{"--no-relay"}, transport.DirectOnly},
		{[]string{"--rendezvous", "rv.example:7887", "--relay-only"}, transport.RelayOnly},
	} {
		fs := newFlagSet("send", "", Env{Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
		var c common
		c.register(fs, Env{Getenv: func(string) string { return "" }})
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if msg := c.check(); msg != "" {
			t.Fatalf("%v: %s", tc.args, msg)
		}
		if got := c.config(Env{Stderr: &bytes.Buffer{}}).Paths; got != tc.want {
			t.Errorf("%v: policy %v, want %v", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--relay-only"}, "--relay-only needs --rendezvous"},
		{[]string{"--rendezvous", "rv.example:7887", "--relay-only", "--no-relay"}, "exclude each other"},
	} {
		for cmd, run := range map[string]func(context.Context, []string, Env) int{"send": Send, "receive": Receive} {
			var stderr bytes.Buffer
			args := append(tc.args, "somefile")
			if code := run(context.Background(), args, Env{Stderr: &stderr, Stdout: &bytes.Buffer{}, Getenv: func(string) string { return "" }}); code != ExitUsage {
				t.Errorf("%s %v: exit %d, want %d", cmd, args, code, ExitUsage)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("%s %v: stderr %q does not say %q", cmd, args, stderr.String(), tc.want)
			}
		}
	}
}
