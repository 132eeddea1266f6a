package safefile

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateCommitAbort(t *testing.T) {
	real := t.TempDir()
	// The caller's own path may be a link to the directory.
	link := filepath.Join(t.TempDir(), "dir")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(link)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, bad := range []string{"", ".", "..", "a/b", "/x"} {
		if _, err := d.Create(bad); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
	p, err := d.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(p.File(), "data")
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	p.Abort() // after Commit: nothing
	if b, err := os.ReadFile(filepath.Join(real, "f")); err != nil || string(b) != "data" {
		t.Fatalf("committed file: %q, %v", b, err)
	}
	p, err = d.Create("g")
	if err != nil {
		t.Fatal(err)
	}
	p.Abort()
	if entries, _ := os.ReadDir(real); len(entries) != 1 {
		t.Errorf("after Abort the directory holds %d entries, want 1", len(entries))
	}
}
