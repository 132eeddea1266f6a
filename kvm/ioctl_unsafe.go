package kvm

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr issues an ioctl whose argument points at *p. The closure holds
// p as a real pointer, so the object stays alive and visible to the GC
// until the kernel is done with it; the uintptr conversion happens inside
// the Syscall call expression as unsafe.Pointer's rules require.
func ioctlPtr[T any](h *fdHandle, req ioctlReq, p *T) (uintptr, error) {
	return h.rawIoctl(req, true, func(fd uintptr) (uintptr, syscall.Errno) {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req.num, uintptr(unsafe.Pointer(p)))
		return r, e
	})
}
