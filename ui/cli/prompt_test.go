package cli

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestPromptCode(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        error
		wantOut        string
	}{
		{"plain", "7-guitar-orbit\n", "7-guitar-orbit", nil, "Enter the code: "},
		{"trimmed", "  7-guitar-orbit \t\r\n", "7-guitar-orbit", nil, "Enter the code: "},
		{"no final newline", "7-guitar-orbit", "7-guitar-orbit", nil, "Enter the code: "},
		{"blank lines prompt again", "\n  \n7-a-b\n", "7-a-b", nil, "Enter the code: Enter the code: Enter the code: "},
		{"EOF", "", "", io.EOF, "Enter the code: "},
		{"EOF after blank line", "\n", "", io.EOF, "Enter the code: Enter the code: "},
		{"nil complete", "7-gu?\n7-guitar-orbit\n", "7-guitar-orbit", nil,
			"Enter the code: No suggestions available.\nEnter the code: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			got, err := PromptCode(strings.NewReader(tt.in), &out, nil)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("PromptCode = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if out.String() != tt.wantOut {
				t.Errorf("output %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
}

func TestPromptCodeCompletion(t *testing.T) {
	var calls []string
	complete := func(partial string, max int) []string {
		calls = append(calls, partial)
		if max != 5 {
			t.Errorf("max = %d, want 5", max)
		}
		switch partial {
		case "gui":
			// More than asked for: PromptCode shows only 5.
			return []string{"guide", "guild", "guilt", "guitar", "guinea", "guise"}
		}
		return nil
	}
	var out strings.Builder
	in := strings.NewReader("7-gui?\nzzz ?\n7-guitar-orbit\nnext line\n")
	got, err := PromptCode(in, &out, complete)
	if err != nil || got != "7-guitar-orbit" {
		t.Fatalf("PromptCode = %q, %v", got, err)
	}
	if strings.Join(calls, ",") != "gui,zzz" {
		t.Errorf("complete called with %q, want gui, zzz", calls)
	}
	want := "Enter the code: " +
		`Words starting with "gui": guide, guild, guilt, guitar, guinea` + "\n" +
		"Enter the code: " +
		`No code words start with "zzz".` + "\n" +
		"Enter the code: "
	if out.String() != want {
		t.Errorf("output\n%q\nwant\n%q", out.String(), want)
	}
	// Only the code's line was consumed.
	rest, _ := io.ReadAll(in)
	if string(rest) != "next line\n" {
		t.Errorf("left in input: %q, want %q", rest, "next line\n")
	}

	// A '?' query and then the end of input.
	out.Reset()
	got, err = PromptCode(strings.NewReader("gui?"), &out, complete)
	if got != "" || !errors.Is(err, io.EOF) {
		t.Errorf("PromptCode at EOF after '?' = %q, %v; want io.EOF", got, err)
	}
	if !strings.Contains(out.String(), "guitar") {
		t.Errorf("hint not shown before EOF: %q", out.String())
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestPromptReadError(t *testing.T) {
	if _, err := PromptCode(failingReader{}, io.Discard, nil); err == nil || err.Error() != "boom" {
		t.Errorf("PromptCode error = %v, want boom", err)
	}
	if ok, err := Confirm(failingReader{}, io.Discard, "Go?"); ok || err == nil {
		t.Errorf("Confirm = %v, %v; want false, boom", ok, err)
	}
}

func TestConfirm(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr error
	}{
		{"y\n", true, nil},
		{"Y\n", true, nil},
		{"yes\n", true, nil},
		{" YeS \r\n", true, nil},
		{"y", true, nil},
		{"n\n", false, nil},
		{"no\n", false, nil},
		{"\n", false, nil},
		{"yeah\n", false, nil},
		{"yes please\n", false, nil},
		{"", false, io.EOF},
	}
	for _, tt := range tests {
		var out strings.Builder
		got, err := Confirm(strings.NewReader(tt.in), &out, "Accept 3 files, 1.2 GB?")
		if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("Confirm(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if want := "Accept 3 files, 1.2 GB? [y/N] "; out.String() != want {
			t.Errorf("Confirm(%q) printed %q, want %q", tt.in, out.String(), want)
		}
	}
	// Confirm reads only its own line.
	in := strings.NewReader("y\nrest\n")
	if ok, _ := Confirm(in, io.Discard, "Go?"); !ok {
		t.Error("Confirm(y) = false")
	}
	if rest, _ := io.ReadAll(in); string(rest) != "rest\n" {
		t.Errorf("left in input: %q", rest)
	}
}

func TestIsTerminal(t *testing.T) {
	if IsTerminal(nil) {
		t.Error("IsTerminal(nil) = true")
	}
	f, err := os.CreateTemp(t.TempDir(), "not-a-tty")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("IsTerminal(regular file) = true")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(r) || IsTerminal(w) {
		t.Error("IsTerminal(pipe) = true")
	}
}
