package main

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLaunchArgs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a report #1.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fileURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(file)}).String()
	const link = "ferry://receive/7-tiger-tomorrow?rendezvous=rv.example:7887"

	for _, tc := range []struct {
		name  string
		args  []string
		paths []string
		link  string
		ok    bool
	}{
		{"a path", []string{file, dir}, []string{file, dir}, "", true},
		{"file URLs (%U)", []string{fileURL, "file://localhost" + filepath.ToSlash(dir)}, []string{file, dir}, "", true},
		{"a share link", []string{link}, nil, link, true},
		{"a bad share link goes to the window to be explained", []string{"ferry://nonsense"}, nil, "ferry://nonsense", true},
		{"a link with files", []string{link, file}, nil, "", false},
		{"two links", []string{link, link}, nil, "", false},
		{"a missing file", []string{filepath.Join(dir, "missing")}, nil, "", false},
		{"a missing file URL", []string{"file://" + filepath.ToSlash(filepath.Join(dir, "missing"))}, nil, "", false},
		{"another host's file", []string{"file://elsewhere" + filepath.ToSlash(file)}, nil, "", false},
		{"a web URL", []string{"https://example.org/"}, nil, "", false},
		{"an unknown command", []string{"sned"}, nil, "", false},
	} {
		paths, link, ok := launchArgs(tc.args)
		if ok != tc.ok || link != tc.link || !slices.Equal(paths, tc.paths) {
			t.Errorf("%s: launchArgs(%q) = %q, %q, %v; want %q, %q, %v", tc.name, tc.args, paths, link, ok, tc.paths, tc.link, tc.ok)
		}
	}
}
