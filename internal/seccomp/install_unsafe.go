package seccomp

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// installTSync installs prog on the calling thread and synchronises every
// other thread to it. The kernel answers a thread it could not
// synchronise with that thread's id rather than an error. FLAG_LOG has
// the kernel log every refusal (a trap is not logged otherwise), so that
// a host's log shows which call ended a tern.
func installTSync(prog []unix.SockFilter) (tid int, err error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// cgoThreads is set by runtime/cgo when a C library is linked in: then
// threads are made by pthread_create (clone3, set_robust_list, rseq), not
// by the Go runtime, and the filter would kill the next one. tern is
// built with CGO_ENABLED=0; this makes another build fail clearly.
//
//go:linkname cgoThreads runtime.iscgo
var cgoThreads bool
