package vmm_test

// Live migration with streamed disks (migrate.SendOptions.WithDisks)
// between two VMs of this process on this host's real /dev/kvm: the
// destination gets files of its own, byte for byte the source's. The
// tiny guests have no disk driver, so the images change only here, before
// the migration; that the blocks a guest writes during the migration are
// sent again is tested in virtio/block and migrate.

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/virtio/block"
	"github.com/ternvm/tern/vmm"
)

// sparseImage makes an image of size bytes with pattern data at the
// given offsets (64 KiB each) and holes elsewhere.
func sparseImage(t *testing.T, path string, size int64, at ...int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for i, off := range at {
		p := bytes.Repeat([]byte{byte(i*37 + 1), 0x5a, byte(off >> 16), 0xc3}, 16<<10)
		if _, err := f.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
}

// startCounterWithDisks runs the counter guest with disks attached.
func startCounterWithDisks(t *testing.T, disks []vmm.DiskConfig) *running {
	t.Helper()
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: tickEvery})
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM, Disks: disks, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, v, cons, hook)
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	pa, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(pa) != len(pb) {
		t.Fatalf("%s is %d bytes, %s %d", b, len(pb), a, len(pa))
	}
	if !bytes.Equal(pa, pb) {
		for i := range pa {
			if pa[i] != pb[i] {
				t.Fatalf("%s differs from %s first at byte %d", b, a, i)
			}
		}
	}
}

func TestMigrateWithDisksCopiesTheImages(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data, ro := filepath.Join(src, "data.img"), filepath.Join(src, "ro.img")
	sparseImage(t, data, 16<<20, 0, 3<<20, 15<<20+(960<<10))
	sparseImage(t, ro, 2<<20, 1<<20)
	vm := startCounterWithDisks(t, []vmm.DiskConfig{
		{Config: block.Config{Path: data, ID: "data"}},
		{Config: block.Config{Path: ro, ReadOnly: true}, Root: true},
	})
	before := vm.waitTicks(t, 2)
	// Written while the VM runs, before the migration: found as data.
	f, err := os.OpenFile(data, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, 100_000), 7<<20+123); err != nil {
		t.Fatal(err)
	}
	f.Close()

	newData, newRO := filepath.Join(dst, "data.img"), filepath.Join(dst, "ro.img")
	// An existing file is emptied first: its bytes must not show through
	// the source's holes.
	if err := os.WriteFile(newRO, bytes.Repeat([]byte{0xff}, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	m := migrateOver(t, vm, migrate.SendOptions{WithDisks: true}, vmm.ReceiveOptions{DiskPaths: map[string]string{data: newData, ro: newRO}}, nil)
	if m.err != nil || m.recvErr != nil {
		t.Fatalf("migration failed: send %v, receive %v", m.err, m.recvErr)
	}
	if res := vm.wait(t); res.reason != vmm.StopMigrated {
		t.Errorf("source Run returned %v, %v; want %v", res.reason, res.err, vmm.StopMigrated)
	}
	sameFile(t, data, newData)
	sameFile(t, ro, newRO)
	if fi, err := os.Stat(newData); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the created copy: %v, mode %v; want 0600", err, fi.Mode())
	}
	st := m.status
	if st.DiskTotalBytes != 18<<20 || st.DiskBytesSent < 4*64<<10+100_000 || st.DiskBytesSent > 6<<20 {
		t.Errorf("status %+v: want the disks' data sent, not their holes", st)
	}
	// The destination runs the guest on its copies, locked as its own.
	if _, err := block.New(block.Config{Path: newData}); !errors.Is(err, block.ErrLocked) {
		t.Errorf("opening the destination's copy: %v, want it locked by the received VM", err)
	}
	if after := m.dst.waitTicks(t, 3); len(after) <= len(before) {
		t.Fatal("no ticks after the migration")
	} else {
		checkCounting(t, after)
	}
	t.Logf("migrated with disks: %d rounds, %d bytes, %d of disk data, downtime %.2f ms", st.Round, st.BytesTransferred, st.DiskBytesSent, st.DowntimeMS)
}

// A streamed disk the destination has no --disk for refuses the
// migration in the handshake, naming it; the copies already made are
// removed, and an override naming an image in use (here the source's
// own) is refused rather than overwritten.
func TestMigrateWithDisksRefused(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	a, b := filepath.Join(src, "a.img"), filepath.Join(src, "b.img")
	sparseImage(t, a, 1<<20, 0)
	sparseImage(t, b, 1<<20, 512<<10)
	orig, _ := os.ReadFile(b)
	vm := startCounterWithDisks(t, []vmm.DiskConfig{{Config: block.Config{Path: a}}, {Config: block.Config{Path: b}}})
	vm.waitTicks(t, 2)

	newA := filepath.Join(dst, "a.img")
	m := migrateOver(t, vm, migrate.SendOptions{WithDisks: true}, vmm.ReceiveOptions{DiskPaths: map[string]string{a: newA}}, nil)
	if !errors.Is(m.err, migrate.ErrRefused) || !strings.Contains(m.err.Error(), b) || !strings.Contains(m.err.Error(), "--disk") {
		t.Errorf("Migrate: %v; want ErrRefused naming %s and --disk", m.err, b)
	}
	if _, err := os.Stat(newA); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy of %s made before the refusal: %v, want it removed", a, err)
	}
	checkRunsOn(t, vm)

	m = migrateOver(t, vm, migrate.SendOptions{WithDisks: true}, vmm.ReceiveOptions{DiskPaths: map[string]string{a: newA, b: b}}, nil)
	if !errors.Is(m.err, migrate.ErrRefused) || !strings.Contains(m.err.Error(), "locked") {
		t.Errorf("Migrate onto the source's own image: %v; want ErrRefused, locked", m.err)
	}
	if now, _ := os.ReadFile(b); !bytes.Equal(now, orig) {
		t.Error("the source's image changed")
	}
	checkRunsOn(t, vm)
	vm.waitTicks(t, 2)
}
