package block

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A disk passed as an open file: the device reads and writes the image
// through its own duplicate after the caller closed its descriptor, and
// holds the same lock an opened path does.
func TestNewAdoptsAnOpenFile(t *testing.T) {
	path, orig := image(t, 16)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Config{File: f}, allFeatures)
	if err := f.Close(); err != nil { // the caller lets go at once
		t.Fatal(err)
	}
	if h.dev.Capacity() != 16 {
		t.Errorf("capacity %d sectors, want 16", h.dev.Capacity())
	}
	r := h.do(specTIn, 1, nil, 2*specSector)
	h.wantStatus("read", r, specSOK)
	if !bytes.Equal(r.data, orig[specSector:3*specSector]) {
		t.Error("read through the adopted file does not match the image")
	}
	data := pattern(specSector, 0x77)
	h.wantStatus("write", h.do(specTOut, 5, data, 0), specSOK)
	if got := fileBytes(t, path); !bytes.Equal(got[5*specSector:6*specSector], data) {
		t.Error("the write did not reach the image")
	}
	// The image is locked against another VM, named by the file's name.
	_, err = New(Config{Path: path})
	var le *LockedError
	if !errors.As(err, &le) || le.Path != path {
		t.Fatalf("New on the image of an adopted file = %v, want a LockedError naming %s", err, path)
	}
	if err := h.dev.Close(); err != nil {
		t.Fatal(err)
	}
	// Both descriptors closed: the lock is gone.
	d, err := New(Config{Path: path})
	if err != nil {
		t.Fatalf("New after the device and the caller closed the file: %v", err)
	}
	d.Close()
}

// While the caller keeps its descriptor, the lock lasts: it belongs to the
// open file both share.
func TestAdoptedFileLockLastsWhileTheCallerHoldsIt(t *testing.T) {
	path, _ := image(t, 4)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := New(Config{File: f, Path: "rootfs"})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := New(Config{Path: path}); !errors.Is(err, ErrLocked) {
		t.Errorf("New while the caller still holds the adopted file = %v, want ErrLocked", err)
	}
}

func TestNewRefusesUnfitFiles(t *testing.T) {
	path, _ := image(t, 4)
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := New(Config{File: ro}); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "opened read-only") {
		t.Errorf("read-write disk on a read-only file = %v, want ErrBadConfig saying it was opened read-only", err)
	}
	d, err := New(Config{File: ro, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only disk on a read-only file: %v", err)
	}
	d.Close()

	wo, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	if _, err := New(Config{File: wo, ReadOnly: true}); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "write-only") {
		t.Errorf("write-only file = %v, want ErrBadConfig saying write-only", err)
	}

	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, err := New(Config{File: dir, ReadOnly: true}); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "not a regular file or block device") {
		t.Errorf("a directory = %v, want ErrBadConfig", err)
	}

	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ff, err := os.OpenFile(fifo, os.O_RDWR, 0) // O_RDWR: opening does not wait for a peer
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	if _, err := New(Config{File: ff}); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "not a regular file or block device") {
		t.Errorf("a FIFO = %v, want ErrBadConfig", err)
	}

	if _, err := New(Config{}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("neither path nor file = %v, want ErrBadConfig", err)
	}
}

// A descriptor means nothing outside this process: it never goes into a
// configuration written out (a snapshot's).
func TestFileIsNotSerialized(t *testing.T) {
	b, err := json.Marshal(Config{Path: "/img", File: os.Stdin})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "File") || strings.Contains(string(b), "stdin") {
		t.Errorf("config JSON %s carries the file", b)
	}
}
