// Command winres writes the Windows resources of ferry.exe (the icon, the
// version information and the application manifest) as a COFF object,
// a .syso file, which `go build` links into package main by itself when
// the file sits in the package's directory and its name ends in
// _windows_amd64.syso (so no other build sees it).
//
//	go run ./packaging/winres -version 0.1.0 -o ferry_windows_amd64.syso
//
// packaging/build-windows.sh runs it. It does what `fyne package -os
// windows` does to the binary, without that tool's second full build and
// the files it writes into the repository root, and it stores the
// hicolor PNGs at several sizes in the icon rather than one scaled image,
// so Explorer's small icons stay sharp. Only modules already in go.mod
// (goversioninfo and rsrc, which the fyne tool uses) are needed.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/josephspurrier/goversioninfo"
)

func main() {
	version := flag.String("version", "", "the release version, e.g. 0.1.0 (required)")
	build := flag.Int("build", 0, "the fourth number of the file version (FyneApp.toml's Build)")
	icons := flag.String("icons", "packaging/icons/hicolor", "hicolor tree holding NxN/apps/io.github.ferry.png")
	manifest := flag.String("manifest", "packaging/windows/ferry.exe.manifest", "application manifest template")
	arch := flag.String("arch", "amd64", "GOARCH of the binary")
	out := flag.String("o", "", "the .syso file to write (required)")
	flag.Parse()
	if *version == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*version, *build, *icons, *manifest, *arch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "winres:", err)
		os.Exit(1)
	}
}

func run(version string, build int, iconDir, manifestTmpl, arch, out string) error {
	fixed, err := fileVersion(version, build)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "winres-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ico := filepath.Join(tmp, "ferry.ico")
	if err := writeICO(ico, iconDir, []int{16, 32, 48, 64, 128, 256}); err != nil {
		return err
	}
	man := filepath.Join(tmp, "ferry.exe.manifest")
	if err := writeManifest(man, manifestTmpl, fixed.GetVersionString()); err != nil {
		return err
	}

	vi := &goversioninfo.VersionInfo{IconPath: ico, ManifestPath: man}
	vi.FixedFileInfo.FileVersion = fixed
	// The product version is the release, three parts as users see it;
	// the file version adds the build number, so each package differs.
	vi.FixedFileInfo.ProductVersion = goversioninfo.FileVersion{Major: fixed.Major, Minor: fixed.Minor, Patch: fixed.Patch}
	vi.FixedFileInfo.FileOS = "040004" // VOS_NT_WINDOWS32
	vi.FixedFileInfo.FileType = "01"   // VFT_APP
	vi.FixedFileInfo.FileFlagsMask = "3f"
	vi.StringFileInfo = goversioninfo.StringFileInfo{
		Comments:         "Send files peer to peer with a short share code",
		CompanyName:      "the ferry authors",
		FileDescription:  "ferry",
		FileVersion:      fixed.GetVersionString(),
		InternalName:     "ferry",
		LegalCopyright:   "Copyright the ferry authors, MIT licence",
		OriginalFilename: "ferry.exe",
		ProductName:      "ferry",
		ProductVersion:   fmt.Sprintf("%d.%d.%d", fixed.Major, fixed.Minor, fixed.Patch),
	}
	// U.S. English, Unicode: what Explorer's Details tab looks up.
	vi.VarFileInfo.Translation = goversioninfo.Translation{LangID: 0x0409, CharsetID: 0x04B0}
	vi.Build()
	vi.Walk()
	return vi.WriteSyso(out, arch)
}

// fileVersion turns "1.2.3" (a pre-release or build suffix after - or + is
// dropped) and the build number into Windows' four-part file version.
func fileVersion(version string, build int) (goversioninfo.FileVersion, error) {
	core := strings.FieldsFunc(version, func(r rune) bool { return r == '-' || r == '+' })
	parts := strings.Split(core[0], ".")
	if len(parts) != 3 {
		return goversioninfo.FileVersion{}, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH", version)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 0xffff {
			return goversioninfo.FileVersion{}, fmt.Errorf("version %q: part %q is not a number up to 65535", version, p)
		}
		n[i] = v
	}
	if build < 0 || build > 0xffff {
		return goversioninfo.FileVersion{}, fmt.Errorf("build %d is not a number up to 65535", build)
	}
	return goversioninfo.FileVersion{Major: n[0], Minor: n[1], Patch: n[2], Build: build}, nil
}

// writeICO stores the hicolor PNGs of the given sizes in one .ico file.
// Windows (Vista and later) and Wine read PNG-compressed icon images.
func writeICO(path, iconDir string, sizes []int) error {
	var images [][]byte
	for _, s := range sizes {
		p := filepath.Join(iconDir, fmt.Sprintf("%dx%d", s, s), "apps", "io.github.ferry.png")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if cfg.Width != s || cfg.Height != s {
			return fmt.Errorf("%s is %dx%d, want %dx%d", p, cfg.Width, cfg.Height, s, s)
		}
		images = append(images, b)
	}
	var buf bytes.Buffer
	le := func(v any) { binary.Write(&buf, binary.LittleEndian, v) }
	le([3]uint16{0, 1, uint16(len(images))}) // reserved, type 1 = icon, count
	offset := 6 + 16*len(images)
	for i, img := range images {
		dim := uint8(sizes[i]) // 256 is stored as 0
		le([4]uint8{dim, dim, 0, 0})
		le([2]uint16{1, 32}) // planes, bits per pixel
		le([2]uint32{uint32(len(img)), uint32(offset)})
		offset += len(img)
	}
	for _, img := range images {
		buf.Write(img)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeManifest(path, tmplPath, version string) error {
	t, err := template.ParseFiles(tmplPath)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.Execute(f, struct{ Version string }{version}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
