// Command ferry sends files between two computers, peer to peer, paired by
// a short share code. With no arguments it will open the desktop app; the
// subcommands are its command-line face.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// version is the release this binary was built from; release builds set it
// with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit statuses, a public contract for scripts.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `ferry sends files peer to peer, paired by a short share code.

Usage:
  ferry version     print the version and exit
  ferry help        show this help

The desktop app, send, receive and rendezvous arrive in upcoming releases.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "ferry %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "ferry: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
