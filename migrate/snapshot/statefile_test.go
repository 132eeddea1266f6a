package snapshot

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestStateFileRoundTripLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmstate")
	if err := WriteStateFile(path, sampleSections()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sampleSections()) || got[1].Name != "vcpu/0" {
		t.Errorf("read back %d sections", len(got))
	}
	if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"vmstate"}) {
		t.Errorf("directory holds %v, want only vmstate", names)
	}
}

func TestWriteStateFileReplacesWholeOrNotAtAll(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmstate")
	if err := WriteStateFile(path, sampleSections()); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path)

	// A stale temporary from an older writer does not get in the way,
	// and is not ours to open or remove.
	os.WriteFile(path+".tmp", []byte("half a file"), 0o600)
	if err := WriteStateFile(path, []Section{{"only", []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStateFile(path)
	if err != nil || len(got) != 1 || got[0].Name != "only" {
		t.Fatalf("after the replacement: %v, %v", got, err)
	}
	if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"vmstate", "vmstate.tmp"}) {
		t.Errorf("directory holds %v, want vmstate and the stale vmstate.tmp", names)
	}
	os.Remove(path + ".tmp")

	// A refused write leaves the previous file as it was.
	os.WriteFile(path, old, 0o600)
	if err := WriteStateFile(path, []Section{{"a", nil}, {"a", nil}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate sections: %v", err)
	}
	// A failed rename (a directory is in the way) too, and cleans up.
	blocked := filepath.Join(dir, "blocked")
	os.Mkdir(blocked, 0o700)
	os.WriteFile(filepath.Join(blocked, "x"), nil, 0o600)
	if err := WriteStateFile(blocked, sampleSections()); err == nil {
		t.Error("renaming over a non-empty directory succeeded")
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
		t.Error("a refused write changed the existing file")
	}
	if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"blocked", "vmstate"}) {
		t.Errorf("directory holds %v after failed writes, want [blocked vmstate]", names)
	}
}

func TestWriteStateFileRefusesWhatReadStateFileWouldRefuse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmstate")
	err := WriteStateFile(path, []Section{{"memory", make([]byte, MaxStateSize)}})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("a %d-byte section: %v, want ErrTooLarge", MaxStateSize, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused file exists: %v", err)
	}
}

func TestReadStateFileChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmstate")
	if err := WriteStateFile(path, sampleSections()); err != nil {
		t.Fatal(err)
	}
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(path, past, past)
	before, _ := os.ReadFile(path)
	if _, err := ReadStateFile(path); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !st.ModTime().Equal(past) || st.Mode().Perm() != 0o600 {
		t.Errorf("reading changed the file (modified %v, mode %v)", st.ModTime(), st.Mode())
	}
	if names := dirNames(t, dir); !reflect.DeepEqual(names, []string{"vmstate"}) {
		t.Errorf("directory holds %v after a read", names)
	}
}

func TestReadStateFileErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt")
	data := mustEncode(t, sampleSections())
	data[bytes.Index(data, []byte("CPUs"))] ^= 1 // inside a section's data
	os.WriteFile(corrupt, data, 0o600)
	huge := filepath.Join(dir, "huge")
	f, _ := os.Create(huge)
	f.Truncate(MaxStateSize + 1) // sparse: costs no disk
	f.Close()
	for _, c := range []struct {
		path string
		want error
	}{
		{corrupt, ErrChecksum},
		{huge, ErrTooLarge},
		{filepath.Join(dir, "missing"), fs.ErrNotExist},
		{dir, nil}, // a directory
	} {
		_, err := ReadStateFile(c.path)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v, want %v", c.path, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.path) {
			t.Errorf("error %q does not name %s", err, c.path)
		}
	}
}
