package kvm

import "unsafe"

// dirtyLog mirrors struct kvm_dirty_log. The bitmap is declared as a real
// pointer (the C union of void* and __u64 is 8 bytes on x86-64) so the Go
// runtime keeps the caller's slice alive and tracks it if it moves.
type dirtyLog struct {
	Slot     uint32
	Padding1 uint32
	Bitmap   unsafe.Pointer
}

// clearDirtyLog mirrors struct kvm_clear_dirty_log.
type clearDirtyLog struct {
	Slot      uint32
	NumPages  uint32
	FirstPage uint64
	Bitmap    unsafe.Pointer
}

func (vm *VM) getDirtyLog(slot uint32, bitmap []uint64) error {
	arg := dirtyLog{Slot: slot, Bitmap: unsafe.Pointer(&bitmap[0])}
	_, err := ioctlPtr(vm.h, kvmGetDirtyLog, &arg)
	return err
}

func (vm *VM) clearDirtyLog(slot uint32, firstPage uint64, numPages uint32, bitmap []uint64) error {
	arg := clearDirtyLog{Slot: slot, NumPages: numPages, FirstPage: firstPage, Bitmap: unsafe.Pointer(&bitmap[0])}
	_, err := ioctlPtr(vm.h, kvmClearDirtyLog, &arg)
	return err
}
