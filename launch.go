package main

import (
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"ferry/discovery/code"
)

// launchArgs reads what the desktop passes to `ferry ARGS...` (the desktop
// entry's Exec=ferry %U): one share link, or files and folders to send, as
// paths or as file:// URLs (what %U gives for files). ok is false for
// anything else, which is then an unknown command. The link is returned as
// given: the window checks it and explains a bad one.
func launchArgs(args []string) (paths []string, link string, ok bool) {
	if len(args) == 1 && code.LooksLikeLink(args[0]) {
		return nil, args[0], true
	}
	for _, a := range args {
		p, ok := localPath(a)
		if !ok {
			return nil, "", false
		}
		paths = append(paths, p)
	}
	return paths, "", len(paths) > 0
}

// localPath returns arg as the path of an existing file or folder: arg
// itself, or the path of a file:// URL on this computer (no host, or
// "localhost"; percent-escapes decoded).
func localPath(arg string) (string, bool) {
	if _, err := os.Stat(arg); err == nil {
		return arg, true
	}
	u, err := url.Parse(arg)
	if err != nil || !strings.EqualFold(u.Scheme, "file") || u.Opaque != "" || u.User != nil ||
		(u.Host != "" && !strings.EqualFold(u.Host, "localhost")) || u.RawQuery != "" || u.Fragment != "" || u.Path == "" {
		return "", false
	}
	p := filepath.FromSlash(u.Path)
	if runtime.GOOS == "windows" && len(p) >= 3 && p[0] == '\\' && p[2] == ':' {
		p = p[1:] // file:///C:/x is C:\x
	}
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}
