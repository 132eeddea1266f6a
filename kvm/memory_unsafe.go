package kvm

import "unsafe"

// RegionForMapping describes host memory mem as slot at guestPhysAddr.
// mem must come from mmap (unix.Mmap), not the Go heap: KVM keeps using
// the address after this call, and the Go runtime would free or reuse heap
// memory it sees no reference to. Keep mem mapped until the slot is
// deleted. An empty mem gives MemorySize 0, which deletes the slot.
func RegionForMapping(slot uint32, flags uint32, guestPhysAddr uint64, mem []byte) UserspaceMemoryRegion {
	r := UserspaceMemoryRegion{Slot: slot, Flags: flags, GuestPhysAddr: guestPhysAddr}
	if len(mem) > 0 {
		r.MemorySize = uint64(len(mem))
		r.UserspaceAddr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem))))
	}
	return r
}
