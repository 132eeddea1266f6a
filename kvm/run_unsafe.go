package kvm

import (
	"sync/atomic"
	"unsafe"
)

// storeRunByte sets byte off (0-3) of run to 1 or 0 atomically with
// respect to other Go callers. sync/atomic has no byte operations, so it
// compare-and-swaps the aligned 32-bit word holding request_interrupt_window,
// immediate_exit and two padding bytes, changing only the one byte. The
// kernel only reads those bytes, so the CAS cannot lose a kernel write.
func storeRunByte(run []byte, off int, on bool) {
	word := (*uint32)(unsafe.Pointer(&run[0]))
	shift := 8 * uint(off) // x86 is little-endian
	for {
		old := atomic.LoadUint32(word)
		next := old &^ (0xff << shift)
		if on {
			next |= 1 << shift
		}
		if atomic.CompareAndSwapUint32(word, old, next) {
			return
		}
	}
}
