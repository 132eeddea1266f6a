package kvm

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// The generic Linux ioctl request encoding (include/uapi/asm-generic/ioctl.h,
// which x86 uses unchanged): direction in bits 30-31, argument size in bits
// 16-29, type in bits 8-15, number in bits 0-7.
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2

	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30

	// kvmio is the ioctl type byte of every KVM request (KVMIO).
	kvmio = 0xAE
)

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<iocDirShift | size<<iocSizeShift | kvmio<<iocTypeShift | nr<<iocNRShift
}

// ioctlIO, ioctlIOR, ioctlIOW and ioctlIOWR are _IO, _IOR, _IOW and _IOWR
// with the type fixed to KVMIO. The direction is seen from user space:
// _IOR means the kernel writes the argument, _IOW that it reads it.
func ioctlIO(nr uintptr) uintptr                 { return ioc(iocNone, nr, 0) }
func ioctlIOR(nr, size uintptr) uintptr          { return ioc(iocRead, nr, size) }
func ioctlIOW(nr, size uintptr) uintptr          { return ioc(iocWrite, nr, size) }
func ioctlIOWR(nr, size uintptr) uintptr         { return ioc(iocRead|iocWrite, nr, size) }
func newIoctl(name string, num uintptr) ioctlReq { return ioctlReq{name: name, num: num} }

// ioctlReq is a request number together with its name in the KVM API, so
// every error says which ioctl failed.
type ioctlReq struct {
	name string
	num  uintptr
}

// fdHandle owns one KVM file descriptor. Going through RawConn.Control
// keeps the *os.File referenced and its descriptor open for the whole
// ioctl, even if another goroutine calls Close meanwhile: the descriptor
// is only released once the call in flight returns. file and conn never
// change after construction, so concurrent use needs no lock.
type fdHandle struct {
	file   *os.File
	conn   syscall.RawConn
	closed atomic.Bool
}

func newFDHandle(f *os.File) (*fdHandle, error) {
	conn, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("getting raw access to %s: %w", f.Name(), err)
	}
	return &fdHandle{file: f, conn: conn}, nil
}

// rawIoctl issues one ioctl through do, retrying on EINTR when retry is
// set, and wraps any failure with the request's name.
func (h *fdHandle) rawIoctl(req ioctlReq, retry bool, do func(fd uintptr) (uintptr, syscall.Errno)) (uintptr, error) {
	if h == nil || h.closed.Load() {
		return 0, fmt.Errorf("%s: %w", req.name, os.ErrClosed)
	}
	var r uintptr
	var errno syscall.Errno
	err := h.conn.Control(func(fd uintptr) {
		for {
			r, errno = do(fd)
			if errno != unix.EINTR || !retry {
				return
			}
		}
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", req.name, err)
	}
	if errno != 0 {
		return r, fmt.Errorf("%s: %w", req.name, errno)
	}
	return r, nil
}

// ioctlArg issues an ioctl whose argument is a plain integer.
func (h *fdHandle) ioctlArg(req ioctlReq, arg uintptr) (uintptr, error) {
	return h.rawIoctl(req, true, func(fd uintptr) (uintptr, syscall.Errno) {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, fd, req.num, arg)
		return r, e
	})
}

// stat is fstat on the descriptor, kept open for the call as rawIoctl
// keeps it.
func (h *fdHandle) stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	if h == nil || h.closed.Load() {
		return st, fmt.Errorf("fstat: %w", os.ErrClosed)
	}
	var serr error
	if err := h.conn.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return st, fmt.Errorf("fstat: %w", err)
	}
	if serr != nil {
		return st, fmt.Errorf("fstat: %w", serr)
	}
	return st, nil
}

// close closes the descriptor once; later calls do nothing.
func (h *fdHandle) close() error {
	if h == nil || !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	return h.file.Close()
}

// fd returns the descriptor, or ^uintptr(0) once closed.
func (h *fdHandle) fd() uintptr {
	if h == nil || h.closed.Load() {
		return ^uintptr(0)
	}
	return h.file.Fd()
}
