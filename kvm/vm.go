package kvm

import (
	"fmt"
	"math"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// pageSize is the x86 base page size KVM's dirty bitmaps count in.
const pageSize = 4096

// VM is a virtual machine fd from KVM_CREATE_VM. Its methods may be called
// from any goroutine.
type VM struct {
	h *fdHandle

	// slots records each memory slot's size as set through this VM, so
	// dirty-log calls can refuse a bitmap smaller than the kernel will
	// write into.
	mu    sync.Mutex
	slots map[uint32]uint64
}

// Close closes the VM fd. The kernel keeps the VM alive until its vCPU
// fds are closed as well.
func (vm *VM) Close() error { return vm.h.close() }

// Fd returns the file descriptor, for diagnostics only.
func (vm *VM) Fd() uintptr { return vm.h.fd() }

// CheckExtension returns KVM_CHECK_EXTENSION for c asked of this VM, which
// can differ from the system answer (KVM_CAP_CHECK_EXTENSION_VM).
func (vm *VM) CheckExtension(c Cap) (int, error) {
	v, err := vm.h.ioctlArg(kvmCheckExtension, uintptr(c))
	return int(v), err
}

// RequireCaps is System.RequireCaps asked of this VM.
func (vm *VM) RequireCaps(caps ...Cap) error {
	return requireCaps(vm.CheckExtension, caps)
}

// SetUserMemoryRegion creates a memory slot, changes its flags or guest
// address, or deletes it (MemorySize 0). KVM cannot resize a slot in
// place: delete it and create it anew.
func (vm *VM) SetUserMemoryRegion(r UserspaceMemoryRegion) error {
	if _, err := ioctlPtr(vm.h, kvmSetUserMemoryRegion, &r); err != nil {
		return fmt.Errorf("slot %d at guest %#x size %#x: %w", r.Slot, r.GuestPhysAddr, r.MemorySize, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if r.MemorySize == 0 {
		delete(vm.slots, r.Slot)
	} else {
		vm.slots[r.Slot] = r.MemorySize
	}
	return nil
}

// SetTSSAddr places the three pages Intel's VMX needs for real-mode
// emulation (KVM_SET_TSS_ADDR); addr must not overlap RAM or MMIO.
func (vm *VM) SetTSSAddr(addr uint64) error {
	_, err := vm.h.ioctlArg(kvmSetTSSAddr, uintptr(addr))
	return err
}

// SetIdentityMapAddr places the one-page identity-map page table VMX
// needs for unpaged guest mode (KVM_SET_IDENTITY_MAP_ADDR). It must be
// called before any vCPU is created.
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	_, err := ioctlPtr(vm.h, kvmSetIdentityMapAddr, &addr)
	return err
}

// CreateIRQChip creates the in-kernel PICs, IOAPIC and per-vCPU local
// APICs (KVM_CREATE_IRQCHIP); call it before creating vCPUs.
func (vm *VM) CreateIRQChip() error {
	_, err := vm.h.ioctlArg(kvmCreateIRQChip, 0)
	return err
}

// CreatePIT2 creates the in-kernel i8254 PIT (KVM_CREATE_PIT2); flags may
// be PITSpeakerDummy.
func (vm *VM) CreatePIT2(flags uint32) error {
	cfg := pitConfig{Flags: flags}
	_, err := ioctlPtr(vm.h, kvmCreatePIT2, &cfg)
	return err
}

// IRQLine sets the level of GSI irq on the in-kernel irqchip
// (KVM_IRQ_LINE). Edge-triggered lines need 1 then 0.
func (vm *VM) IRQLine(irq uint32, level uint32) error {
	arg := irqLevel{IRQ: irq, Level: level}
	if _, err := ioctlPtr(vm.h, kvmIRQLine, &arg); err != nil {
		return fmt.Errorf("irq %d level %d: %w", irq, level, err)
	}
	return nil
}

// SignalMSI injects one MSI (KVM_SIGNAL_MSI). It returns whether the
// interrupt was delivered (false: blocked by the guest).
func (vm *VM) SignalMSI(addr uint64, data uint32) (bool, error) {
	arg := msi{AddressLo: uint32(addr), AddressHi: uint32(addr >> 32), Data: data}
	r, err := ioctlPtr(vm.h, kvmSignalMSI, &arg)
	return r > 0, err
}

func fdToUint32(fd int) (uint32, error) {
	if fd < 0 || fd > math.MaxInt32 {
		return 0, fmt.Errorf("invalid file descriptor %d", fd)
	}
	return uint32(fd), nil
}

// RegisterIRQFD makes every write to the eventfd fd raise GSI gsi in the
// kernel (KVM_IRQFD), without a trip through user space.
func (vm *VM) RegisterIRQFD(fd int, gsi uint32) error {
	return vm.irqfd(fd, gsi, 0)
}

// UnregisterIRQFD undoes RegisterIRQFD for the same fd and gsi.
func (vm *VM) UnregisterIRQFD(fd int, gsi uint32) error {
	return vm.irqfd(fd, gsi, irqfdFlagDeassign)
}

func (vm *VM) irqfd(fd int, gsi uint32, flags uint32) error {
	ufd, err := fdToUint32(fd)
	if err != nil {
		return fmt.Errorf("KVM_IRQFD gsi %d: %w", gsi, err)
	}
	arg := irqfd{FD: ufd, GSI: gsi, Flags: flags}
	if _, err := ioctlPtr(vm.h, kvmIRQFD, &arg); err != nil {
		return fmt.Errorf("gsi %d fd %d: %w", gsi, fd, err)
	}
	return nil
}

// RegisterIOEventFD makes guest writes of length bytes to addr (a port if
// pio, else an MMIO address) signal the eventfd fd instead of exiting to
// user space (KVM_IOEVENTFD). With datamatch non-nil only writes of that
// value match. length 0 matches any length where the host supports
// KVM_CAP_IOEVENTFD_ANY_LENGTH.
func (vm *VM) RegisterIOEventFD(fd int, addr uint64, length uint32, datamatch *uint64, pio bool) error {
	return vm.ioeventfd(fd, addr, length, datamatch, pio, 0)
}

// UnregisterIOEventFD undoes RegisterIOEventFD; the arguments must be the
// ones it was registered with.
func (vm *VM) UnregisterIOEventFD(fd int, addr uint64, length uint32, datamatch *uint64, pio bool) error {
	return vm.ioeventfd(fd, addr, length, datamatch, pio, ioeventfdFlagDeassign)
}

func (vm *VM) ioeventfd(fd int, addr uint64, length uint32, datamatch *uint64, pio bool, flags uint32) error {
	ufd, err := fdToUint32(fd)
	if err != nil {
		return fmt.Errorf("KVM_IOEVENTFD at %#x: %w", addr, err)
	}
	arg := ioeventfd{Addr: addr, Len: length, FD: int32(ufd), Flags: flags}
	if datamatch != nil {
		arg.Datamatch = *datamatch
		arg.Flags |= ioeventfdFlagDatamatch
	}
	if pio {
		arg.Flags |= ioeventfdFlagPIO
	}
	if _, err := ioctlPtr(vm.h, kvmIOEventFD, &arg); err != nil {
		return fmt.Errorf("address %#x length %d fd %d: %w", addr, length, fd, err)
	}
	return nil
}

// DefaultTSCKHz returns the TSC frequency new vCPUs of this VM get, in
// kHz (KVM_GET_TSC_KHZ on the VM fd, Linux 5.19 and later): the host's,
// unless set otherwise.
func (vm *VM) DefaultTSCKHz() (uint32, error) {
	khz, err := vm.h.ioctlArg(kvmGetTSCKHz, 0)
	return uint32(khz), err
}

// GetClock returns the VM's kvmclock (KVM_GET_CLOCK).
func (vm *VM) GetClock() (ClockData, error) {
	var c ClockData
	_, err := ioctlPtr(vm.h, kvmGetClock, &c)
	return c, err
}

// SetClock sets the VM's kvmclock (KVM_SET_CLOCK); with ClockRealtime in
// Flags the kernel advances Clock by the realtime elapsed since Realtime.
func (vm *VM) SetClock(c ClockData) error {
	_, err := ioctlPtr(vm.h, kvmSetClock, &c)
	return err
}

// DirtyBitmapWords returns how many uint64 words a dirty bitmap for a
// region of memorySize bytes needs: one bit per 4 KiB page, rounded up to
// whole words as the kernel does.
func DirtyBitmapWords(memorySize uint64) int {
	pages := (memorySize + pageSize - 1) / pageSize
	return int((pages + 63) / 64)
}

// GetDirtyLog fills bitmap with the pages of slot written since the last
// call (KVM_GET_DIRTY_LOG), one bit per page, bit i of word j for page
// 64*j+i. bitmap must hold DirtyBitmapWords of the slot's size, and the
// slot must have been set through this VM with MemLogDirtyPages.
func (vm *VM) GetDirtyLog(slot uint32, bitmap []uint64) error {
	vm.mu.Lock()
	size, ok := vm.slots[slot]
	vm.mu.Unlock()
	if !ok {
		return fmt.Errorf("KVM_GET_DIRTY_LOG: slot %d was not set through this VM", slot)
	}
	if need := DirtyBitmapWords(size); len(bitmap) < need {
		return fmt.Errorf("KVM_GET_DIRTY_LOG: slot %d of %#x bytes needs a %d-word bitmap, got %d", slot, size, need, len(bitmap))
	}
	return vm.getDirtyLog(slot, bitmap)
}

// ClearDirtyLog re-protects, for dirty tracking, the pages of slot in
// [firstPage, firstPage+numPages) whose bits are set in bitmap
// (KVM_CLEAR_DIRTY_LOG, with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled).
// firstPage must be a multiple of 64.
func (vm *VM) ClearDirtyLog(slot uint32, firstPage uint64, numPages uint32, bitmap []uint64) error {
	// The kernel reads (numPages+63)/64 words; one is passed even for
	// zero pages so there is an address to hand over.
	if need := max((int(numPages)+63)/64, 1); len(bitmap) < need {
		return fmt.Errorf("KVM_CLEAR_DIRTY_LOG: %d pages need a %d-word bitmap, got %d", numPages, need, len(bitmap))
	}
	return vm.clearDirtyLog(slot, firstPage, numPages, bitmap)
}

// EnableCap enables capability c on the VM with up to four arguments
// (KVM_ENABLE_CAP).
func (vm *VM) EnableCap(c Cap, args ...uint64) error {
	return enableCapOn(vm.h, c, args)
}

func enableCapOn(h *fdHandle, c Cap, args []uint64) error {
	var arg enableCap
	if len(args) > len(arg.Args) {
		return fmt.Errorf("KVM_ENABLE_CAP %s: %d arguments, at most %d fit", c, len(args), len(arg.Args))
	}
	arg.Cap = uint32(c)
	copy(arg.Args[:], args)
	if _, err := ioctlPtr(h, kvmEnableCap, &arg); err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	return nil
}

// GetIRQChip reads the state of one in-kernel interrupt controller
// (KVM_GET_IRQCHIP); chipID is IRQChipPICMaster, IRQChipPICSlave or
// IRQChipIOAPIC.
func (vm *VM) GetIRQChip(chipID uint32) (IRQChip, error) {
	c := IRQChip{ChipID: chipID}
	_, err := ioctlPtr(vm.h, kvmGetIRQChip, &c)
	return c, err
}

// SetIRQChip writes the state of the controller named by c.ChipID
// (KVM_SET_IRQCHIP).
func (vm *VM) SetIRQChip(c IRQChip) error {
	_, err := ioctlPtr(vm.h, kvmSetIRQChip, &c)
	return err
}

// GetPIT2 reads the in-kernel PIT state (KVM_GET_PIT2).
func (vm *VM) GetPIT2() (PITState2, error) {
	var s PITState2
	_, err := ioctlPtr(vm.h, kvmGetPIT2, &s)
	return s, err
}

// SetPIT2 writes the in-kernel PIT state (KVM_SET_PIT2).
func (vm *VM) SetPIT2(s PITState2) error {
	_, err := ioctlPtr(vm.h, kvmSetPIT2, &s)
	return err
}

// CreateVCPU creates vCPU id (its initial APIC ID) with KVM_CREATE_VCPU
// and maps its kvm_run area of mmapSize bytes (System.VCPUMmapSize).
//
// It must be called on the OS thread that will run the vCPU: lock the
// goroutine with runtime.LockOSThread first and keep it locked for the
// vCPU's life. KVM binds a vCPU to the task that runs it, moving it
// between threads costs an RCU grace period, and the signal that kicks a
// vCPU out of KVM_RUN must target that thread.
func (vm *VM) CreateVCPU(id int, mmapSize int) (*VCPU, error) {
	if id < 0 || id > math.MaxInt32 {
		return nil, fmt.Errorf("KVM_CREATE_VCPU: invalid vCPU id %d", id)
	}
	if mmapSize < runStructSize {
		return nil, fmt.Errorf("KVM_CREATE_VCPU: mmap size %d is smaller than struct kvm_run (%d bytes)", mmapSize, runStructSize)
	}
	fd, err := vm.h.ioctlArg(kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("vCPU %d: %w", id, err)
	}
	f := os.NewFile(fd, fmt.Sprintf("kvm-vcpu:%d", id))
	h, err := newFDHandle(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	run, err := mmapRun(h, mmapSize)
	if err != nil {
		h.close()
		return nil, fmt.Errorf("mapping kvm_run of vCPU %d: %w", id, err)
	}
	return &VCPU{id: id, h: h, run: run}, nil
}

func mmapRun(h *fdHandle, size int) ([]byte, error) {
	var run []byte
	var mapErr error
	err := h.conn.Control(func(fd uintptr) {
		run, mapErr = unix.Mmap(int(fd), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	})
	if err != nil {
		return nil, err
	}
	return run, mapErr
}
