package cpuidcache

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// archGetXCompGuestPerm is ARCH_GET_XCOMP_GUEST_PERM (asm/prctl.h).
const archGetXCompGuestPerm = 0x1024

// xcompGuestPerm is the xfeature mask this process may give its guests.
// Kernels older than 5.17 have no dynamic xfeatures and refuse the
// request (EINVAL): their KVM answers the same for every process.
func xcompGuestPerm() (uint64, error) {
	var mask uint64
	_, _, e := unix.Syscall(unix.SYS_ARCH_PRCTL, archGetXCompGuestPerm, uintptr(unsafe.Pointer(&mask)), 0)
	switch {
	case e == 0:
		return mask, nil
	case errors.Is(e, unix.EINVAL):
		return 0, nil
	}
	return 0, e
}
