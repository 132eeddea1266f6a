// Package seccomp confines tern once its VM is built: a seccomp-BPF
// allow-list of the system calls, and of the ioctl requests, that running
// a guest needs, installed on every thread of the process at once.
//
// Go moves goroutines between OS threads and starts threads of its own at
// any time, so a filter on one thread protects nothing: Install uses
// SECCOMP_FILTER_FLAG_TSYNC to put the one filter on every thread, and
// threads created later inherit it (gVisor does the same).
//
// A call outside the list raises SIGSYS (SECCOMP_RET_TRAP) rather than
// killing the process outright (SECCOMP_RET_KILL_PROCESS): the call is
// refused either way, but the Go runtime then dies printing "SIGSYS: bad
// system call" and the goroutine that made it, which names the call and
// its caller. In audit mode such a call is allowed and the kernel logs it
// (SECCOMP_RET_LOG, an audit record "type=1326 ... syscall=N"), to find
// what a new code path needs.
package seccomp

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Mode is what the filter does with a call outside the allow-list.
type Mode int

const (
	// Enforce refuses the call with SIGSYS, which ends tern.
	Enforce Mode = iota + 1
	// Audit lets the call through and has the kernel log it.
	Audit
)

func (m Mode) String() string {
	switch m {
	case Enforce:
		return "enforce"
	case Audit:
		return "audit"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Program assembles the filter for mode, as the kernel takes it. pid is
// the process whose threads it confines: signals may be sent only to it.
func Program(mode Mode, pid int) ([]unix.SockFilter, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp: no filter for %s, only for amd64", runtime.GOARCH)
	}
	var deny uint32
	switch mode {
	case Enforce:
		deny = retTrap
	case Audit:
		deny = retLog
	default:
		return nil, fmt.Errorf("seccomp: unknown mode %d", int(mode))
	}
	rs, err := rules(pid)
	if err != nil {
		return nil, err
	}
	return assemble(rs, deny)
}

// ErrCgo is Install's answer in a program linked with a C library (a
// build with cgo), whose threads the filter does not allow for.
var ErrCgo = errors.New("seccomp: this program is linked with a C library (built with cgo), whose threads the filter would kill: build it with CGO_ENABLED=0")

// Usable returns ErrCgo where Install would (a build with cgo), else nil:
// whether this program can take the filter at all.
func Usable() error {
	if cgoThreads {
		return ErrCgo
	}
	return nil
}

// Install puts the filter for mode on every thread of this process. It
// sets no_new_privs first, which the kernel requires of a process without
// CAP_SYS_ADMIN; the bit then holds for good, as does the filter.
func Install(mode Mode) error { return Prepare(mode)() }

// Prepare assembles the filter for mode on another goroutine and returns
// what installs it (as Install does) once it is assembled: a monitor
// prepares it while it builds the VM, so that only the installation
// stands between the built VM and the guest's first instruction.
func Prepare(mode Mode) func() error {
	type result struct {
		prog []unix.SockFilter
		err  error
	}
	done := make(chan result, 1)
	go func() {
		prog, err := Program(mode, unix.Getpid())
		done <- result{prog, err}
	}()
	return func() error {
		r := <-done
		done <- r // a second call sees the same program
		if err := Usable(); err != nil {
			return err
		}
		if r.err != nil {
			return r.err
		}
		return installProgram(r.prog)
	}
}

// installProgram sets no_new_privs and installs prog on every thread.
func installProgram(prog []unix.SockFilter) error {
	// no_new_privs is a thread's attribute and the kernel checks the
	// calling thread's: both calls must be made from one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: set no_new_privs: %w", err)
	}
	tid, err := installTSync(prog)
	switch {
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("seccomp: this kernel refuses the filter (seccomp filters or thread synchronisation missing?): %w", err)
	case err != nil:
		return fmt.Errorf("seccomp: install the filter: %w", err)
	case tid != 0:
		return fmt.Errorf("seccomp: thread %d could not take the filter (it has one of its own)", tid)
	}
	return nil
}
