package block

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func lockTestImage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, make([]byte, 64*SectorSize), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two VMs writing one image corrupt it: the second is refused. flock
// locks belong to the open file, so two devices in this process conflict
// as two processes would.
func TestImageLockedAgainstASecondWriter(t *testing.T) {
	p := lockTestImage(t)
	a, err := New(Config{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, ro := range []bool{false, true} {
		b, err := New(Config{Path: p, ReadOnly: ro})
		if err == nil {
			b.Close()
			t.Fatalf("read-only %v: a second device opened a read-write image in use", ro)
		}
		var le *LockedError
		if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || err.Error() != "disk "+p+" is in use by another VM (locked)" {
			t.Errorf("read-only %v: %v", ro, err)
		}
	}
	// Closing releases it.
	a.Close()
	b, err := New(Config{Path: p})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b.Close()
}

func TestReadOnlyImagesShareTheirLock(t *testing.T) {
	p := lockTestImage(t)
	a, err := New(Config{Path: p, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Path: p, ReadOnly: true})
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	defer b.Close()
	if c, err := New(Config{Path: p}); !errors.Is(err, ErrLocked) {
		if err == nil {
			c.Close()
		}
		t.Errorf("a writer beside readers: %v", err)
	}
}

// Migration hands the lock over: the source unlocks, the destination
// locks, and on failure the source takes it back.
func TestUnlockAndLockHandTheImageOver(t *testing.T) {
	p := lockTestImage(t)
	src, err := New(Config{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.Unlock(); err != nil {
		t.Fatal(err)
	}
	dst, err := New(Config{Path: p})
	if err != nil {
		t.Fatalf("the destination after Unlock: %v", err)
	}
	if err := src.Lock(); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), p) {
		t.Errorf("re-locking while the destination holds it: %v", err)
	}
	dst.Close()
	if err := src.Lock(); err != nil {
		t.Errorf("re-locking once the destination let go: %v", err)
	}
}
