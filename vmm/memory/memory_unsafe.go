package memory

import "unsafe"

// hostAddr is the address KVM is given for a mapping; the mapping is never
// moved by the Go runtime because it is not Go-allocated memory.
func hostAddr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }
