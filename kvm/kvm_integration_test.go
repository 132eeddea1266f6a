package kvm

import (
	"bytes"
	"errors"
	"io/fs"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// openHostKVM returns /dev/kvm or skips: this part needs a KVM host (the
// build machine has none; the nested test host does).
func openHostKVM(t *testing.T) *System {
	t.Helper()
	sys, err := Open("/dev/kvm")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	return sys
}

func TestHostSystemQueries(t *testing.T) {
	sys := openHostKVM(t)
	if v, err := sys.APIVersion(); err != nil || v != APIVersion {
		t.Fatalf("APIVersion() = %d, %v; want 12", v, err)
	}
	if err := sys.RequireCaps(CapUserMemory, CapHLT, CapExtCPUID, CapIRQChip); err != nil {
		t.Errorf("RequireCaps: %v", err)
	}
	if size, err := sys.VCPUMmapSize(); err != nil || size < runStructSize {
		t.Errorf("VCPUMmapSize() = %d, %v", size, err)
	}
	cpuid, err := sys.SupportedCPUID()
	if err != nil || len(cpuid) == 0 || cpuid[0].Function != 0 {
		t.Errorf("SupportedCPUID() = %d entries, %v; want leaf 0 first", len(cpuid), err)
	}
	msrs, err := sys.MSRIndexList()
	if err != nil || len(msrs) == 0 {
		t.Errorf("MSRIndexList() = %d entries, %v", len(msrs), err)
	}
}

// TestHostRunRealModeGuest runs a few real-mode instructions and checks
// each exit they cause:
//
//	mov dx, 0x3f8 ; out dx, al ('A') ; in al, dx ; mov [0x5000], al ; hlt
//
// Guest RAM is 16 KiB at 0, so the store to 0x5000 is MMIO.
func TestHostRunRealModeGuest(t *testing.T) {
	sys := openHostKVM(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()

	mem, err := unix.Mmap(-1, 0, 0x4000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	code := []byte{0xba, 0xf8, 0x03, 0xb0, 'A', 0xee, 0xec, 0xa2, 0x00, 0x50, 0xf4}
	copy(mem[0x1000:], code)
	if err := vm.SetUserMemoryRegion(RegionForMapping(0, 0, 0, mem)); err != nil {
		t.Fatal(err)
	}

	mmapSize, err := sys.VCPUMmapSize()
	if err != nil {
		t.Fatal(err)
	}
	vcpu, err := vm.CreateVCPU(0, mmapSize)
	if err != nil {
		t.Fatal(err)
	}
	defer vcpu.Close()

	sregs, err := vcpu.GetSregs()
	if err != nil {
		t.Fatal(err)
	}
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	if err := vcpu.SetSregs(sregs); err != nil {
		t.Fatal(err)
	}
	if err := vcpu.SetRegs(Regs{RIP: 0x1000, RFLAGS: RFLAGSReserved1}); err != nil {
		t.Fatal(err)
	}

	exit, err := vcpu.Run()
	if out, ok := exit.(ExitIO); err != nil || !ok || out.In || out.Port != 0x3f8 || !bytes.Equal(out.Data, []byte{'A'}) {
		t.Fatalf("first exit = %#v, %v; want OUT 'A' to 0x3f8", exit, err)
	}
	exit, err = vcpu.Run()
	in, ok := exit.(ExitIO)
	if err != nil || !ok || !in.In || in.Size != 1 {
		t.Fatalf("second exit = %#v, %v; want 1-byte IN", exit, err)
	}
	in.Data[0] = 0x42
	exit, err = vcpu.Run()
	if m, ok := exit.(ExitMMIO); err != nil || !ok || !m.Write || m.Addr != 0x5000 || !bytes.Equal(m.Data, []byte{0x42}) {
		t.Fatalf("third exit = %#v, %v; want MMIO write of 0x42 to 0x5000", exit, err)
	}
	exit, err = vcpu.Run()
	if _, ok := exit.(ExitHLT); err != nil || !ok {
		t.Fatalf("fourth exit = %#v, %v; want HLT", exit, err)
	}
	regs, err := vcpu.GetRegs()
	if err != nil || regs.RAX&0xff != 0x42 {
		t.Errorf("RAX = %#x, %v; want AL 0x42 from the IN", regs.RAX, err)
	}

	vcpu.SetImmediateExit(true)
	if exit, err := vcpu.Run(); err != nil || exit != (ExitInterrupted{}) {
		t.Errorf("Run with immediate_exit = %#v, %v; want ExitInterrupted", exit, err)
	}
	vcpu.SetImmediateExit(false)

	got, err := vcpu.GetMSRs([]uint32{MSRIA32TSC, MSRIA32SysenterCS})
	if err != nil || len(got) != 2 || got[0].Index != MSRIA32TSC {
		t.Errorf("GetMSRs = %+v, %v", got, err)
	}
}
