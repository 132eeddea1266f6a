package vmm_test

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/vmm"
	"golang.org/x/sys/unix"
)

// tapInNetns attaches a TAP called name, as a privileged caller would,
// in a network namespace of its own (so the host's is left alone), and
// returns the caller's descriptor. A thread parked in the namespace keeps
// it, and the TAP, until the test ends.
func tapInNetns(t *testing.T, name string) *os.File {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace and a TAP")
	}
	type result struct {
		f   *os.File
		err error
	}
	got, done := make(chan result), make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			got <- result{err: err}
			return
		}
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			got <- result{err: err}
			return
		}
		ifr, _ := unix.NewIfreq(name)
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			got <- result{err: err}
			return
		}
		got <- result{f: os.NewFile(uintptr(fd), "caller's tap")}
		<-done
	}()
	r := <-got
	if r.err != nil {
		t.Skipf("cannot make a TAP in a namespace of its own: %v", r.err)
	}
	t.Cleanup(func() { close(done); r.f.Close() })
	return r.f
}

// savedConfig reads the disk paths and TAP names a snapshot recorded.
func savedConfig(t *testing.T, dir string) (disks, taps []string, raw string) {
	t.Helper()
	sections, err := snapshot.ReadStateFile(filepath.Join(dir, vmm.SnapshotStateFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sections {
		if s.Name == "config" {
			raw = string(s.Data)
		}
	}
	var c struct {
		Disks []struct{ Path string }
		Nets  []struct{ TAP string }
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Disks {
		disks = append(disks, d.Path)
	}
	for _, n := range c.Nets {
		taps = append(taps, n.TAP)
	}
	return disks, taps, raw
}

func newImage(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A disk and a TAP the caller opened are handed over as files: tern needs
// no right to open either. The tiny guest has no virtio drivers, so what
// is checked is the host side: the VM is built on them and runs, the
// image is locked, the snapshot names both as the files do, and a restore
// takes files for them again. The datapath over an adopted TAP is tested
// in virtio/net, the I/O over an adopted image in virtio/block.
func TestDiskAndTAPPassedAsFiles(t *testing.T) {
	tinyguest.RequireKVM(t)
	tapF := tapInNetns(t, "tern-vmfd0")
	img := newImage(t, "disk.img")
	diskF, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: tickEvery})
	if err != nil {
		t.Fatal(err)
	}
	cfg := vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM,
		Disks: []vmm.DiskConfig{{Config: block.Config{File: diskF}}},
		Nets:  []virtionet.Config{{TAPFile: tapF, MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}}},
	}

	// A read-write disk on a descriptor opened read-only is refused.
	roF, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Disks = []vmm.DiskConfig{{Config: block.Config{File: roF}}}
	if _, err := vmm.New(bad); !errors.Is(err, block.ErrBadConfig) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("New with a read-only descriptor for a read-write disk = %v, want block.ErrBadConfig", err)
	}
	roF.Close()

	cons := &console{}
	log, hook := newLogger()
	cfg.Console, cfg.Logger = cons, log
	v, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	diskF.Close() // the caller may let go once the VM is built
	if cfg.Disks[0].Path != "" || cfg.Nets[0].TAP != "" {
		t.Errorf("New changed the caller's configuration: disk path %q, TAP %q", cfg.Disks[0].Path, cfg.Nets[0].TAP)
	}
	r := start(t, v, cons, hook)
	r.waitTicks(t, 1)
	if _, err := block.New(block.Config{Path: img}); !errors.Is(err, block.ErrLocked) {
		t.Errorf("opening the image beside the running VM = %v, want it locked", err)
	}
	if err := v.Pause(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := v.Snapshot(vmm.SnapshotOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	disks, taps, raw := savedConfig(t, dir)
	if len(disks) != 1 || disks[0] != img || len(taps) != 1 || taps[0] != "tern-vmfd0" {
		t.Errorf("snapshot names disks %q and TAPs %q; want the file's path %s and the attached TAP tern-vmfd0", disks, taps, img)
	}
	if strings.Contains(raw, `"File"`) || strings.Contains(raw, `"TAPFile"`) {
		t.Errorf("the snapshot's configuration carries a file: %s", raw)
	}
	v.Stop()
	r.wait(t)
	before := r.cons.String()

	// The restore takes files again: a copy of the image (the stopped VM
	// still holds the original's lock) and the caller's TAP.
	copyImg := newImage(t, "copy.img")
	copyF, err := os.OpenFile(copyImg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer copyF.Close()
	if _, err := vmm.Restore(vmm.RestoreOptions{Dir: dir, DiskFiles: map[string]*os.File{"/elsewhere.img": copyF}, TAPFiles: map[string]*os.File{"tern-vmfd0": tapF}}); !errors.Is(err, vmm.ErrInvalidConfig) || !strings.Contains(err.Error(), "/elsewhere.img") {
		t.Fatalf("Restore with a file for a disk the snapshot lacks = %v, want ErrInvalidConfig naming it", err)
	}
	if _, err := vmm.Restore(vmm.RestoreOptions{Dir: dir, DiskFiles: map[string]*os.File{img: copyF}}); !errors.As(err, new(*vmm.UnconfirmedError)) || !strings.Contains(err.Error(), "TAP tern-vmfd0") {
		t.Fatalf("Restore without the TAP = %v, want it unconfirmed", err)
	}
	cons2 := &console{}
	log2, hook2 := newLogger()
	v2, err := vmm.Restore(vmm.RestoreOptions{Dir: dir, Console: cons2, Logger: log2,
		DiskFiles: map[string]*os.File{img: copyF}, TAPFiles: map[string]*os.File{"tern-vmfd0": tapF}})
	if err != nil {
		t.Fatal(err)
	}
	rr := start(t, v2, cons2, hook2)
	rr.earlier = before
	checkCounting(t, rr.waitTicks(t, 2))
	if _, err := block.New(block.Config{Path: copyImg}); !errors.Is(err, block.ErrLocked) {
		t.Errorf("opening the copy beside the restored VM = %v, want it locked", err)
	}
}
