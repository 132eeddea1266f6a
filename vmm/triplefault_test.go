package vmm_test

import (
	"context"
	"debug/elf"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// A guest that triple-faults stops the VM with StopTripleFault, and the
// warning says where its vCPU was: the address of the faulting
// instruction (the triple guest's "fault" symbol), its mode and the empty
// IDT that made it fatal, so a triple fault seen in a log can be looked
// into without running the guest again.
func TestTripleFaultLogsTheVCPUState(t *testing.T) {
	tinyguest.RequireKVM(t)
	path, err := tinyguest.BuildTriple(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.Symbols()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var fault uint64
	for _, s := range syms {
		if s.Name == "fault" {
			fault = s.Value
		}
	}
	if fault == 0 {
		t.Fatal("the triple guest has no fault symbol")
	}
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: path, PreferPVH: true, MemoryBytes: 32 << 20, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reason, err := v.Run(ctx)
	if err != nil || reason != vmm.StopTripleFault {
		t.Fatalf("Run: %v, %v; want a triple fault", reason, err)
	}
	if !strings.Contains(cons.String(), tinyguest.TripleLine) {
		t.Errorf("console %q lacks %q", cons.String(), tinyguest.TripleLine)
	}
	var found bool
	for _, e := range hook.AllEntries() {
		if e.Message != "vCPU shut down (triple fault)" {
			continue
		}
		found = true
		want := map[string]string{"rip": fmt.Sprintf("%#x", fault), "idt": "0x0/0x0"}
		for k, w := range want {
			if got := fmt.Sprint(e.Data[k]); got != w {
				t.Errorf("%s=%s, want %s", k, got, w)
			}
		}
		for _, k := range []string{"rsp", "cr0", "cr3", "cr4", "efer", "cs"} {
			if _, ok := e.Data[k]; !ok {
				t.Errorf("the line lacks %s: %v", k, e.Data)
			}
		}
	}
	if !found {
		t.Error("no triple-fault warning logged")
	}
}
