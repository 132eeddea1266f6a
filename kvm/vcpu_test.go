package kvm

import (
	"errors"
	"os"
	"testing"
)

func TestSetImmediateExitTouchesOnlyItsByte(t *testing.T) {
	run := make([]byte, 4096)
	run[0] = 1    // request_interrupt_window, owned by the vCPU thread
	run[2] = 0xaa // padding must survive too
	v := &VCPU{run: run}

	v.SetImmediateExit(true)
	if run[1] != 1 || run[0] != 1 || run[2] != 0xaa {
		t.Errorf("after set: bytes 0-3 = % x, want 01 01 aa 00", run[:4])
	}
	v.SetImmediateExit(false)
	if run[1] != 0 || run[0] != 1 || run[2] != 0xaa {
		t.Errorf("after clear: bytes 0-3 = % x, want 01 00 aa 00", run[:4])
	}
}

func TestSetImmediateExitConcurrentWithClose(t *testing.T) {
	v := &VCPU{run: make([]byte, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			v.SetImmediateExit(true)
		}
	}()
	v.runMu.Lock()
	v.run = nil // what Close does before unmapping
	v.runMu.Unlock()
	<-done
	v.SetImmediateExit(true) // after close: no effect, no crash
}

func TestRunOnClosedVCPU(t *testing.T) {
	v := &VCPU{id: 2}
	if _, err := v.Run(); err == nil {
		t.Error("Run on a vCPU without a kvm_run mapping succeeded")
	}
}

func TestEnableCapRejectsTooManyArgs(t *testing.T) {
	vm := &VM{slots: map[uint32]uint64{}}
	if err := vm.EnableCap(CapX2APICAPI, 1, 2, 3, 4, 5); err == nil {
		t.Error("EnableCap accepted five arguments; struct kvm_enable_cap holds four")
	}
}

func TestFDArgumentsAreValidated(t *testing.T) {
	vm := &VM{slots: map[uint32]uint64{}}
	if err := vm.RegisterIRQFD(-1, 5); err == nil {
		t.Error("RegisterIRQFD accepted fd -1")
	}
	if err := vm.RegisterIOEventFD(-1, 0xd0000050, 4, nil, false); err == nil {
		t.Error("RegisterIOEventFD accepted fd -1")
	}
}

func TestCreateVCPURejectsSmallMapping(t *testing.T) {
	vm := &VM{slots: map[uint32]uint64{}}
	if _, err := vm.CreateVCPU(0, 2351); err == nil {
		t.Error("CreateVCPU accepted a mapping smaller than struct kvm_run")
	}
	if _, err := vm.CreateVCPU(-1, 4096); err == nil {
		t.Error("CreateVCPU accepted id -1")
	}
}

func TestVMOnClosedHandle(t *testing.T) {
	vm := &VM{slots: map[uint32]uint64{}}
	if err := vm.CreateIRQChip(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("CreateIRQChip on a VM without an fd: err = %v, want os.ErrClosed", err)
	}
}
