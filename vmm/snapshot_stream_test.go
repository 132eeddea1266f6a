package vmm_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/virtio/block"
	"github.com/ternvm/tern/vmm"
)

// startCounterWithDisk runs the counter guest with a 1 MiB read-write
// disk (the guest has no virtio driver and never touches it; the disk is
// there for the host side: its path in the snapshot, its lock).
func startCounterWithDisk(t *testing.T) (*running, string) {
	t.Helper()
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: tickEvery})
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xd5}, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM, Console: cons, Logger: log,
		Disks: []vmm.DiskConfig{{Config: block.Config{Path: disk}}}})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, v, cons, hook), disk
}

func TestSnapshotToAStreamAndRestoreFromIt(t *testing.T) {
	r, disk := startCounterWithDisk(t)
	r.waitTicks(t, 2)
	var stream bytes.Buffer
	if _, err := r.vm.SnapshotTo(context.Background(), &stream); !errors.Is(err, vmm.ErrNotPaused) {
		t.Fatalf("SnapshotTo of a running VM = %v, want ErrNotPaused", err)
	}
	if stream.Len() != 0 {
		t.Fatalf("a refused SnapshotTo wrote %d bytes", stream.Len())
	}
	if err := r.vm.Pause(); err != nil {
		t.Fatal(err)
	}
	res, err := r.vm.SnapshotTo(context.Background(), &stream)
	if err != nil {
		t.Fatal(err)
	}
	if res.StreamBytes != uint64(stream.Len()) || res.MemoryBytes != guestRAM || res.Memory.StoredPages == 0 {
		t.Errorf("result %+v for a %d-byte stream of a %d-byte guest", res, stream.Len(), guestRAM)
	}
	t.Logf("stream of %d bytes, %d pages with data, in %v", stream.Len(), res.Memory.StoredPages, res.Took)
	r.vm.Stop()
	r.wait(t)
	before := r.cons.String()
	beforeTicks := ticks(t, before)
	good := stream.Bytes()

	// The restore uses a copy of the disk, so that the source VM's lock
	// on the original says nothing about the restored one.
	copyDisk := filepath.Join(t.TempDir(), "copy.img")
	if err := os.WriteFile(copyDisk, bytes.Repeat([]byte{0xd5}, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	mapped := map[string]string{disk: copyDisk}

	// The disk the stream names is not used unconfirmed.
	var unconfirmed *vmm.UnconfirmedError
	if _, err := vmm.RestoreFrom(bytes.NewReader(good), vmm.RestoreOptions{}); !errors.As(err, &unconfirmed) {
		t.Fatalf("RestoreFrom without confirming the disk = %v, want an UnconfirmedError", err)
	} else if !strings.Contains(err.Error(), "snapshot stream") || len(unconfirmed.Resources) != 1 || unconfirmed.Resources[0].Name != disk {
		t.Errorf("UnconfirmedError %v does not name the stream and the disk %s", err, disk)
	}

	// Damaged or cut short, the stream is refused with a clear error:
	// no event, no console output, and nothing left holding the disk
	// (the cut just before the commit comes after the devices were built).
	bad := map[string][]byte{}
	for _, cut := range []int{0, 7, 100, len(good) / 2, len(good) - 10} {
		bad["cut at "+strconv.Itoa(cut)] = good[:cut]
	}
	for _, off := range []int{3, 40, len(good) / 3, len(good) - 30} {
		b := bytes.Clone(good)
		b[off] ^= 0x01
		bad["bit flipped at "+strconv.Itoa(off)] = b
	}
	for name, b := range bad {
		var evs eventLog
		cons := &console{}
		v, err := vmm.RestoreFrom(bytes.NewReader(b), vmm.RestoreOptions{DiskPaths: mapped, Console: cons, OnEvent: evs.add})
		if err == nil {
			v.Close()
			t.Fatalf("%s: RestoreFrom accepted the stream", name)
		}
		if !errors.Is(err, vmm.ErrBadSnapshot) || !(errors.Is(err, migrate.ErrProtocol) || errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Errorf("%s: %v, want ErrBadSnapshot with ErrProtocol or ErrUnexpectedEOF", name, err)
		}
		if !strings.Contains(err.Error(), "snapshot stream") {
			t.Errorf("%s: %q does not say it is the snapshot stream", name, err)
		}
		if e := evs.kinds(); len(e) != 0 || cons.String() != "" {
			t.Errorf("%s: events %v, console %q from a refused stream", name, e, cons.String())
		}
	}

	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.RestoreFrom(bytes.NewReader(good), vmm.RestoreOptions{DiskPaths: mapped, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if s := v.State(); s != vmm.StateCreated {
		t.Errorf("RestoreFrom returned a VM in state %v, want it not yet started", s)
	}
	rr := start(t, v, cons, hook)
	rr.earlier = before
	all := rr.waitTicks(t, 2)
	checkCounting(t, all)
	if first, last := all[len(beforeTicks)], beforeTicks[len(beforeTicks)-1]; first <= last {
		t.Errorf("restored guest's first tick %#x is not past the last tick before the snapshot %#x", first, last)
	}
	if strings.Contains(cons.String(), tinyguest.CounterStartLine) || rr.bootSignals() != 0 {
		t.Error("the restored guest booted again instead of going on")
	}
}

// The stream needs no seeking and no second file: it goes through a
// pipe, restored while it is written.
func TestSnapshotStreamThroughAPipe(t *testing.T) {
	r := startCounter(t)
	r.waitTicks(t, 2)
	if err := r.vm.Pause(); err != nil {
		t.Fatal(err)
	}
	before := r.cons.String()
	beforeTicks := ticks(t, before)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	werr := make(chan error, 1)
	go func() {
		_, err := r.vm.SnapshotTo(context.Background(), pw)
		pw.Close()
		werr <- err
	}()
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.RestoreFrom(pr, vmm.RestoreOptions{Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	r.vm.Stop()
	r.wait(t)
	before = r.cons.String() // the paused guest printed nothing more
	rr := start(t, v, cons, hook)
	rr.earlier = before
	all := rr.waitTicks(t, 2)
	checkCounting(t, all)
	if len(all) <= len(beforeTicks) {
		t.Fatalf("no new ticks after the restore")
	}
}

func TestRestoreFromRefusesADirectory(t *testing.T) {
	_, err := vmm.RestoreFrom(strings.NewReader(""), vmm.RestoreOptions{Dir: t.TempDir()})
	if !errors.Is(err, vmm.ErrInvalidConfig) || !strings.Contains(err.Error(), "Dir") {
		t.Fatalf("RestoreFrom with Dir = %v, want ErrInvalidConfig naming Dir", err)
	}
}
