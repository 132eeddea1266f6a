package vmm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// A guest polling its i8042 reads Ctrl+Alt+Del as scan codes once
// SendCtrlAltDel runs. tern's i8042 starts with translation on, as a
// BIOS leaves it, so the guest reads set 1: left Ctrl 1d, left Alt 38,
// Delete e0 53 (written out from the scan code tables).
func TestSendCtrlAltDelReachesGuest(t *testing.T) {
	r := startGuest(t, 32<<20, func(dir string) (string, error) { return tinyguest.BuildKeyboard(dir, 4) })
	waitFor(t, "the keyboard guest to be ready", func() bool { return strings.Contains(r.cons.String(), tinyguest.KeyboardLine) })
	if err := r.vm.SendCtrlAltDel(); err != nil {
		t.Fatal(err)
	}
	res := r.wait(t)
	if res.err != nil || res.reason != vmm.StopPoweroff {
		t.Fatalf("Run = %v, %v; want the guest's power-off after four bytes", res.reason, res.err)
	}
	var keys []string
	for _, l := range strings.Split(r.cons.String(), "\n") {
		if k, ok := strings.CutPrefix(l, tinyguest.KeyPrefix); ok {
			keys = append(keys, k)
		}
	}
	want := []string{"0000001d", "00000038", "000000e0", "00000053"}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("guest read %v, want %v", keys, want)
	}
	if err := r.vm.SendCtrlAltDel(); !errors.Is(err, vmm.ErrNotRunning) {
		t.Errorf("Ctrl+Alt+Del to a stopped guest: %v, want ErrNotRunning", err)
	}
}

// Keys queued in a paused guest's i8042 are part of its snapshot: the
// restored guest reads them.
func TestCtrlAltDelSurvivesSnapshot(t *testing.T) {
	r := startGuest(t, 32<<20, func(dir string) (string, error) { return tinyguest.BuildKeyboard(dir, 4) })
	waitFor(t, "the keyboard guest to be ready", func() bool { return strings.Contains(r.cons.String(), tinyguest.KeyboardLine) })
	if err := r.vm.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := r.vm.SendCtrlAltDel(); err != nil {
		t.Fatalf("Ctrl+Alt+Del to a paused guest: %v", err)
	}
	dir := t.TempDir()
	if _, err := r.vm.Snapshot(vmm.SnapshotOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	r.vm.Stop()
	r.wait(t)
	if strings.Contains(r.cons.String(), tinyguest.KeyPrefix) {
		t.Fatal("the paused guest read keys")
	}

	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.Restore(vmm.RestoreOptions{Dir: dir, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rr := start(t, v, cons, hook)
	if res := rr.wait(t); res.err != nil || res.reason != vmm.StopPoweroff {
		t.Fatalf("restored guest: %v, %v; want its power-off after reading the keys", res.reason, res.err)
	}
	if n := strings.Count(cons.String(), tinyguest.KeyPrefix); n != 4 {
		t.Errorf("the restored guest read %d keys, want the 4 queued before the snapshot:\n%s", n, cons.String())
	}
}
