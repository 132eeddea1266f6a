package vmm

import (
	"fmt"
	"sync"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/kvm"
)

// PrepareHost starts, on another goroutine, the host work that New and
// Restore begin with on the KVM device at path: opening and checking it,
// creating the KVM VM with its TSS and identity-map pages, and asking
// which CPUID it supports (together about 0.7 ms of KVM calls on the
// development machine, most of it in the kernel). The next New or Restore
// whose KVMPath is path takes what it made instead of doing it again, so
// a program that parses its command line and checks its files meanwhile
// starts its guest sooner. What failed is done again, and reported, by
// New; what no New or Restore takes is released when the process exits. A
// second call releases the first one's work once it is done.
func PrepareHost(path string) {
	p := &preparedHost{path: path, done: make(chan struct{})}
	go p.prepare()
	preparedMu.Lock()
	old := prepared
	prepared = p
	preparedMu.Unlock()
	if old != nil {
		go old.release()
	}
}

var (
	preparedMu sync.Mutex
	prepared   *preparedHost // the latest PrepareHost not yet taken
)

// preparedHost is what PrepareHost made; its fields are set before done
// closes.
type preparedHost struct {
	path  string
	done  chan struct{}
	sys   *kvm.System
	vm    *kvm.VM
	mmap  int
	cpuid func() ([]kvm.CPUIDEntry2, error) // nil where opening failed
	err   error
}

func (p *preparedHost) prepare() {
	defer close(p.done)
	if p.sys, p.err = openKVM(p.path); p.err != nil {
		return
	}
	p.cpuid = supportedCPUIDAsync(p.sys)
	p.vm, p.mmap, p.err = createKVMVM(p.sys)
}

// openHost gives v the KVM device (and the VM too where PrepareHost made
// them) and returns what waits for the device's supported CPUID, asked on
// another thread: KVM_GET_SUPPORTED_CPUID takes about 0.4 ms here and
// needs nothing but the device, so the VM is built meanwhile.
func (v *VM) openHost() (func() ([]kvm.CPUIDEntry2, error), error) {
	if p := takePreparedHost(v.cfg.KVMPath); p != nil {
		v.sys, v.vm, v.mmap = p.sys, p.vm, p.mmap
		return p.cpuid, nil
	}
	sys, err := openKVM(v.cfg.KVMPath)
	if err != nil {
		return nil, err
	}
	v.sys = sys
	return supportedCPUIDAsync(sys), nil
}

// release closes what prepare opened, once it is done.
func (p *preparedHost) release() {
	<-p.done
	if p.cpuid != nil {
		p.cpuid() // its ioctl must end before the KVM fd closes
	}
	if p.vm != nil {
		p.vm.Close()
	}
	if p.sys != nil {
		p.sys.Close()
	}
}

// takePreparedHost returns, once done, what PrepareHost made for path, or
// nil where it was not called for path or failed (its work released).
func takePreparedHost(path string) *preparedHost {
	preparedMu.Lock()
	p := prepared
	if p == nil || p.path != path {
		preparedMu.Unlock()
		return nil
	}
	prepared = nil
	preparedMu.Unlock()
	<-p.done
	if p.err != nil {
		p.release()
		return nil
	}
	return p
}

// createKVMVM creates a KVM VM with its TSS and identity-map pages and
// returns it with the size of a vCPU's mapping.
func createKVMVM(sys *kvm.System) (_ *kvm.VM, mmap int, err error) {
	vm, err := sys.CreateVM()
	if err != nil {
		return nil, 0, fmt.Errorf("create VM: %w", err)
	}
	defer func() {
		if err != nil {
			vm.Close()
		}
	}()
	if mmap, err = sys.VCPUMmapSize(); err != nil {
		return nil, 0, fmt.Errorf("get vCPU mmap size: %w", err)
	}
	if err := vm.SetTSSAddr(boot.TSSAddr); err != nil {
		return nil, 0, fmt.Errorf("set TSS address: %w", err)
	}
	if err := vm.SetIdentityMapAddr(boot.IdentityMapAddr); err != nil {
		return nil, 0, fmt.Errorf("set identity map address: %w", err)
	}
	return vm, mmap, nil
}
