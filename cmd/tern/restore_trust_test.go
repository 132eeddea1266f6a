package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/vmm"
)

// hostNamingSnapshot writes a snapshot of a 16 MiB guest whose
// configuration names a disk image, a TAP and a vsock socket.
func hostNamingSnapshot(t *testing.T) (dir, disk string) {
	t.Helper()
	dir = t.TempDir()
	disk = filepath.Join(dir, "root-only.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o400); err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	st, _ := snapshot.NewState(nil)
	st.Put("config", fmt.Appendf(nil, `{"CPUs":1,"MemoryBytes":%d,"Disks":[{"Path":%q}],"Nets":[{"TAP":"tap-victim"}],"Vsock":{"GuestCID":3,"SocketPath":"/run/victim.sock"}}`, size, disk))
	st.Put("vm", []byte(`{}`))
	st.Put("vcpu/0", []byte(`{"ID":0}`))
	for _, name := range []string{"disk0", "net0", "vsock"} {
		st.Put("device/"+name, fmt.Appendf(nil, `{"Name":%q}`, name))
	}
	mem, _ := json.Marshal(snapshot.MemoryInfo{Kind: "full", PageSize: snapshot.PageSize, Regions: []snapshot.MemoryRegion{{GPA: 0, Size: size}}})
	st.Put("memory", mem)
	if err := snapshot.WriteStateFile(filepath.Join(dir, "vmstate"), st.Sections()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "memory"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "memory"), size); err != nil {
		t.Fatal(err)
	}
	return dir, disk
}

// TestRestoreNamesEachUnconfirmedResourceAndItsFlag: a snapshot's host
// resources need a flag each (or --trust-snapshot-paths); the one-line
// error names every one with the flag that confirms or replaces it.
func TestRestoreNamesEachUnconfirmedResourceAndItsFlag(t *testing.T) {
	dir, disk := hostNamingSnapshot(t)
	noKVM := filepath.Join(t.TempDir(), "kvm")
	restore := func(extra ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := runMain(append([]string{"tern", "snapshot", "restore", "--dir", dir, "--kvm", noKVM}, extra...), &out, &errOut)
		return code, errOut.String()
	}
	code, msg := restore()
	if code != 1 || strings.Count(strings.TrimRight(msg, "\n"), "\n") != 0 {
		t.Errorf("exit %d, stderr %q: want 1 and one line", code, msg)
	}
	for _, want := range []string{
		"snapshot " + dir + " names host resources",
		"disk image " + disk + " (read-write): --disk " + disk + "=" + disk + " to use it, or --disk " + disk + "=NEWPATH",
		"TAP tap-victim: --tap tap-victim=tap-victim, or --tap tap-victim=NEW",
		"vsock socket /run/victim.sock: --vsock-socket /run/victim.sock, or another path",
		"--trust-snapshot-paths",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr %q does not contain %q", msg, want)
		}
	}
	// Confirmed one by one, the disk's and the TAP's still missing.
	if _, msg := restore("--vsock-socket", "/tmp/v.sock"); strings.Contains(msg, "vsock socket") || !strings.Contains(msg, "TAP tap-victim") {
		t.Errorf("with --vsock-socket: %q", msg)
	}
	// Confirmed, or trusted: the restore goes on to KVM.
	for _, args := range [][]string{
		{"--trust-snapshot-paths"},
		{"--disk", disk + "=" + disk, "--tap", "tap-victim=tap-victim", "--vsock-socket", "/run/victim.sock"},
	} {
		if code, msg := restore(args...); code != 1 || !strings.Contains(msg, noKVM+" does not exist") {
			t.Errorf("%v: exit %d, stderr %q: want the missing KVM device", args, code, msg)
		}
	}
}

func TestReceiveExplainsUnconfirmedWithItsOwnFlag(t *testing.T) {
	err := explainUnconfirmed(&vmm.UnconfirmedError{From: "the incoming VM", Resources: []vmm.HostResource{{Kind: vmm.ResourceBridge, Name: "br0"}}}, "--trust-source-paths")
	want := "the incoming VM names host resources no flag confirms (nothing was opened): bridge br0: --bridge br0=br0, or --bridge br0=NEW; or --trust-source-paths to use each as it is named"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("%q\nwant prefix %q", err, want)
	}
}
