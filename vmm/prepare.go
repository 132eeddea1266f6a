package vmm

import (
	"fmt"
	"sync"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/vmm/memory"
)

// PrepareHost starts, on another goroutine, the host work that New and
// Restore begin with on the KVM device at path: opening and checking it
// and creating the KVM VM with its TSS and identity-map pages (about 0.4
// ms of KVM calls on the development machine, most of it in the kernel).
// The next New or Restore whose KVMPath is path takes what it made instead
// of doing it again, so a program that parses its command line and checks
// its files meanwhile starts its guest sooner; New or Restore gets the
// device's supported CPUID (another 0.5 ms here where it is not in
// Config.HostCacheDir) on its caller's thread while the VM is made. What
// failed is done again, and reported, by New; what no New or Restore
// takes is released when the process exits. A second call releases the
// first one's work once it is done.
func PrepareHost(path string) { PrepareHostFor(path, 0) }

// PrepareHostFor is PrepareHost that, given a guest RAM size, goes on as
// New would for a guest of that much RAM on plain pages with no dirty-page
// log: it maps the RAM, registers it with KVM and creates the in-kernel
// interrupt controllers (about 0.3 ms more here), so that New can start
// the vCPUs' threads as soon as it has taken them. A New whose RAM differs
// (size, huge pages, a dirty-page log) and Restore leave that VM and make
// their own.
func PrepareHostFor(path string, memoryBytes uint64) {
	p := &preparedHost{path: path, memBytes: memoryBytes, opened: make(chan struct{}), done: make(chan struct{})}
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

// preparedHost is what PrepareHost made: sys and openErr are set before
// opened closes, the rest before done does.
type preparedHost struct {
	path     string
	memBytes uint64 // guest RAM to prepare; 0 for none
	opened   chan struct{}
	done     chan struct{}
	sys      *kvm.System
	openErr  error
	vm       *kvm.VM
	mmap     int
	mem      *memory.Memory // registered with vm, its interrupt controllers made; nil if not prepared
	err      error          // of making the VM, its RAM or its irqchip
}

func (p *preparedHost) prepare() {
	p.sys, p.openErr = openKVM(p.path)
	close(p.opened)
	defer close(p.done)
	if p.openErr != nil {
		return
	}
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
// them) and returns what waits for the device's supported CPUID (read
// from the host cache, or KVM_GET_SUPPORTED_CPUID: about 0.5 ms here),
// which needs nothing but the device, so the VM is built meanwhile, on
// PrepareHost's goroutine or (without it) while this one asks on another.
// With fresh (New) it takes prepared guest RAM and interrupt controllers
// too, where they are what cfg asks for; a prepared VM that has them
// otherwise is closed (Restore, another RAM size) and v makes its own.
func (v *VM) openHost(fresh bool) (func() ([]kvm.CPUIDEntry2, error), error) {
	if p := takePreparedHost(v.cfg.KVMPath); p != nil {
		<-p.opened
		if p.openErr != nil {
			<-p.done
			return v.openOwnHost() // and report what failed
		}
		// Asked here: this thread would only wait for the VM, and a
		// third thread would compete for this machine's two CPUs.
		ids, err := v.hostCPUID(p.sys)
		cpuid := func() ([]kvm.CPUIDEntry2, error) { return ids, err }
		<-p.done
		v.sys = p.sys
		switch c := v.cfg; {
		case p.err != nil:
			p.closeVM() // v makes its own, and reports what failed
		case p.mem == nil:
			v.vm, v.mmap = p.vm, p.mmap
		case fresh && p.memBytes == c.MemoryBytes && !c.HugePages && !c.TrackDirtyPages:
			v.vm, v.mmap, v.mem = p.vm, p.mmap, p.mem // and its irqchip
		default:
			p.closeVM()
		}
		return cpuid, nil
	}
	return v.openOwnHost()
}

// openOwnHost opens v's KVM device and asks its CPUID on another thread.
func (v *VM) openOwnHost() (func() ([]kvm.CPUIDEntry2, error), error) {
	sys, err := openKVM(v.cfg.KVMPath)
	if err != nil {
		return nil, err
	}
	v.sys = sys
	return v.supportedCPUIDAsync(sys), nil
}

// release closes what prepare opened, once it is done.
func (p *preparedHost) release() {
	<-p.done
	p.closeVM()
	if p.sys != nil {
		p.sys.Close()
	}
}

// closeVM closes the VM and RAM prepare made, once it is done.
func (p *preparedHost) closeVM() {
	<-p.done
	if p.vm != nil {
		p.vm.Close()
	}
	if p.mem != nil {
		p.mem.Close()
	}
}

// takePreparedHost returns what PrepareHost made or is making for path,
// or nil where it was not called for path.
func takePreparedHost(path string) *preparedHost {
	preparedMu.Lock()
	defer preparedMu.Unlock()
	p := prepared
	if p == nil || p.path != path {
		return nil
	}
	prepared = nil
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
