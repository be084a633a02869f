package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// BenchmarkFolderOfSmallFiles sends a real source tree, the Go standard
// library's src folder (about 11,000 files averaging 12 KB, nested
// folders), with the real ferry binary over loopback, and reports files
// per second besides bytes. For small files the per-file work (create,
// sync, move into place, folder syncs) dominates, not the bytes. Run with
//
//	go test -run XXX -bench FolderOfSmallFiles -benchtime 1x ./internal/e2e/
func BenchmarkFolderOfSmallFiles(b *testing.B) {
	src := filepath.Join(runtime.GOROOT(), "src")
	files, size := 0, int64(0)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			size += info.Size()
		}
		return nil
	})
	if err != nil || files == 0 {
		b.Skipf("no Go source tree at %s: %v", src, err)
	}
	addr, _, _ := startRendezvousProcess(b)
	dir := b.TempDir()
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, "out", string(rune('a'+i%26)))
		if err := os.MkdirAll(out, 0o755); err != nil {
			b.Fatal(err)
		}
		ferryCopy(b, addr, src, out)
		b.StopTimer()
		if i == 0 {
			sameTree(b, src, filepath.Join(out, "src"))
		}
		os.RemoveAll(out)
		b.StartTimer()
	}
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
	b.ReportMetric(float64(files), "files")
}
