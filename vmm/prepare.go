package vmm

import (
	"fmt"
	"sync"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/vmm/memory"
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
func PrepareHost(path string) { PrepareHostFor(path, 0) }

// PrepareHostFor is PrepareHost that, given a guest RAM size, goes on as
// New would for a guest of that much RAM on plain pages with no dirty-page
// log: it maps the RAM, registers it with KVM and creates the in-kernel
// interrupt controllers (about 0.3 ms more here), so that New can start
// the vCPUs' threads as soon as it has taken them. A New whose RAM differs
// (size, huge pages, a dirty-page log) and Restore leave that VM and make
// their own.
func PrepareHostFor(path string, memoryBytes uint64) {
	p := &preparedHost{path: path, memBytes: memoryBytes, done: make(chan struct{})}
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
	path     string
	memBytes uint64 // guest RAM to prepare; 0 for none
	done     chan struct{}
	sys      *kvm.System
	vm       *kvm.VM
	mmap     int
	mem      *memory.Memory                    // registered with vm, its interrupt controllers made; nil if not prepared
	cpuid    func() ([]kvm.CPUIDEntry2, error) // nil where opening failed
	err      error
}

func (p *preparedHost) prepare() {
	defer close(p.done)
	if p.sys, p.err = openKVM(p.path); p.err != nil {
		return
	}
	p.cpuid = supportedCPUIDAsync(p.sys)
	if p.vm, p.mmap, p.err = createKVMVM(p.sys); p.err != nil || p.memBytes == 0 {
		return
	}
	if checkHostMemory(p.memBytes) != nil {
		return // New reports it
	}
	// In New's order (see createIRQChips). A failure leaves the VM in a
	// state New cannot take: all of it is released and New starts over.
	if p.mem, p.err = memory.New(p.memBytes, memory.Options{}); p.err != nil {
		return
	}
	if p.err = registerRAM(p.vm, p.mem, false); p.err == nil {
		p.err = createIRQChip(p.vm)
	}
}

// openHost gives v the KVM device (and the VM too where PrepareHost made
// them) and returns what waits for the device's supported CPUID, asked on
// another thread: KVM_GET_SUPPORTED_CPUID takes about 0.4 ms here and
// needs nothing but the device, so the VM is built meanwhile. With fresh
// (New) it takes prepared guest RAM and interrupt controllers too, where
// they are what cfg asks for; a prepared VM that has them otherwise is
// closed (Restore, another RAM size) and v makes its own.
func (v *VM) openHost(fresh bool) (func() ([]kvm.CPUIDEntry2, error), error) {
	if p := takePreparedHost(v.cfg.KVMPath); p != nil {
		v.sys = p.sys
		switch c := v.cfg; {
		case p.mem == nil:
			v.vm, v.mmap = p.vm, p.mmap
		case fresh && p.memBytes == c.MemoryBytes && !c.HugePages && !c.TrackDirtyPages:
			v.vm, v.mmap, v.mem, v.irqchipMade = p.vm, p.mmap, p.mem, true
		default:
			p.vm.Close()
			p.mem.Close()
		}
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
	if p.mem != nil {
		p.mem.Close()
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
