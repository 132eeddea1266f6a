package seccomp_test

import (
	"testing"

	. "github.com/ternvm/tern/internal/seccomp"
	"golang.org/x/sys/unix"
)

// threadCloneFlags are the Go runtime's (runtime/os_linux.go cloneFlags).
const threadCloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD

const testPID = 4242

// kvmNumbers are request numbers from include/uapi/linux/kvm.h.
const (
	reqKVMRun         = 0xae80
	reqKVMGetRegs     = 0x8090ae81
	reqKVMGetDirtyLog = 0x4010ae42
	reqKVMCreateVM    = 0xae01
	reqKVMCreateVCPU  = 0xae41
	reqKVMSetRegs     = 0x4090ae82
	reqKVMSetMSRs     = 0x4008ae89
	reqKVMSetGuestDbg = 0x4048ae9b
)

func mustProgram(t *testing.T, m Mode) []unix.SockFilter {
	t.Helper()
	prog, err := Program(m, testPID)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func verdict(t *testing.T, prog []unix.SockFilter, d seccompData) uint32 {
	t.Helper()
	r, err := run(prog, d)
	if err != nil {
		t.Fatalf("syscall %d %#x: %v", d.nr, d.args, err)
	}
	return r
}

func TestRunPhaseCallsAreAllowed(t *testing.T) {
	prog := mustProgram(t, Enforce)
	t.Logf("filter: %d instructions", len(prog))
	allowed := map[string]seccompData{
		"KVM_RUN":                          call(unix.SYS_IOCTL, 12, reqKVMRun),
		"KVM_GET_REGS (snapshot)":          call(unix.SYS_IOCTL, 12, reqKVMGetRegs),
		"KVM_GET_DIRTY_LOG (migration)":    call(unix.SYS_IOCTL, 11, reqKVMGetDirtyLog),
		"TCGETS (logrus)":                  call(unix.SYS_IOCTL, 2, unix.TCGETS),
		"TUNSETOFFLOAD (virtio-net)":       call(unix.SYS_IOCTL, 14, unix.TUNSETOFFLOAD),
		"read":                             call(unix.SYS_READ, 3, 0, 8),
		"write":                            call(unix.SYS_WRITE, 2, 0, 8),
		"futex":                            call(unix.SYS_FUTEX),
		"epoll_pwait":                      call(unix.SYS_EPOLL_PWAIT),
		"accept4 (API)":                    call(unix.SYS_ACCEPT4),
		"pwrite64 (disk)":                  call(unix.SYS_PWRITE64),
		"fdatasync (disk)":                 call(unix.SYS_FDATASYNC),
		"fallocate (discard)":              call(unix.SYS_FALLOCATE),
		"flock (disk hand-over)":           call(unix.SYS_FLOCK),
		"openat (snapshot)":                call(unix.SYS_OPENAT),
		"renameat (snapshot)":              call(unix.SYS_RENAMEAT),
		"madvise (balloon)":                call(unix.SYS_MADVISE),
		"getrandom (rng)":                  call(unix.SYS_GETRANDOM),
		"socket AF_UNIX (vsock)":           call(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM),
		"socket AF_INET (migration)":       call(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM),
		"socket AF_INET6 (migration)":      call(unix.SYS_SOCKET, unix.AF_INET6, unix.SOCK_DGRAM),
		"mmap read-write":                  call(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE),
		"mprotect none":                    call(unix.SYS_MPROTECT, 0, 4096, unix.PROT_NONE),
		"clone a thread":                   call(unix.SYS_CLONE, threadCloneFlags|unix.CLONE_SETTLS),
		"prctl PR_SET_VMA (anon name)":     call(unix.SYS_PRCTL, unix.PR_SET_VMA, unix.PR_SET_VMA_ANON_NAME),
		"tgkill own thread":                call(unix.SYS_TGKILL, testPID, 77, uint64(unix.SIGURG)),
		"kill self":                        call(unix.SYS_KILL, testPID, uint64(unix.SIGTERM)),
		"restart_syscall":                  call(unix.SYS_RESTART_SYSCALL),
		"exit_group":                       call(unix.SYS_EXIT_GROUP),
		"rt_sigreturn":                     call(unix.SYS_RT_SIGRETURN),
		"sched_getaffinity (GOMAXPROCS)":   call(unix.SYS_SCHED_GETAFFINITY),
		"eventfd2 (netpoller set-up)":      call(unix.SYS_EVENTFD2),
		"connect (migration, vsock)":       call(unix.SYS_CONNECT),
		"getsockopt (connect's SO_ERROR)":  call(unix.SYS_GETSOCKOPT),
		"unlinkat (vsock, API teardown)":   call(unix.SYS_UNLINKAT),
		"mkdirat (snapshot directory)":     call(unix.SYS_MKDIRAT),
		"newfstatat (stat, resolv.conf)":   call(unix.SYS_NEWFSTATAT),
		"sync_file_range (disk copy)":      call(unix.SYS_SYNC_FILE_RANGE),
		"ftruncate (snapshot memory file)": call(unix.SYS_FTRUNCATE),
	}
	for name, d := range allowed {
		if got := verdict(t, prog, d); got != retAllow {
			t.Errorf("%s: verdict %#x, want allow", name, got)
		}
	}
}

func TestForbiddenCallsAreTrapped(t *testing.T) {
	prog := mustProgram(t, Enforce)
	forbidden := map[string]seccompData{
		"execve":                            call(unix.SYS_EXECVE),
		"execveat":                          call(unix.SYS_EXECVEAT),
		"fork":                              call(unix.SYS_FORK),
		"vfork":                             call(unix.SYS_VFORK),
		"clone3":                            call(unix.SYS_CLONE3),
		"clone as fork":                     call(unix.SYS_CLONE, uint64(unix.SIGCHLD)),
		"clone as vfork (os/exec)":          call(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_VFORK|uint64(unix.SIGCHLD)),
		"clone a thread in a new namespace": call(unix.SYS_CLONE, threadCloneFlags|unix.CLONE_NEWNS),
		"ptrace":                            call(unix.SYS_PTRACE),
		"process_vm_writev":                 call(unix.SYS_PROCESS_VM_WRITEV),
		"mount":                             call(unix.SYS_MOUNT),
		"unshare":                           call(unix.SYS_UNSHARE),
		"setuid":                            call(unix.SYS_SETUID),
		"chmod":                             call(unix.SYS_FCHMODAT),
		"symlinkat":                         call(unix.SYS_SYMLINKAT),
		"listen":                            call(unix.SYS_LISTEN),
		"bpf":                               call(unix.SYS_BPF),
		"init_module":                       call(unix.SYS_INIT_MODULE),
		"keyctl":                            call(unix.SYS_KEYCTL),
		"socket AF_NETLINK":                 call(unix.SYS_SOCKET, unix.AF_NETLINK, unix.SOCK_RAW),
		"socket AF_PACKET":                  call(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_RAW),
		"socket AF_VSOCK":                   call(unix.SYS_SOCKET, unix.AF_VSOCK, unix.SOCK_STREAM),
		"mmap executable":                   call(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_EXEC),
		"mprotect executable":               call(unix.SYS_MPROTECT, 0, 4096, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC),
		"pkey_mprotect":                     call(unix.SYS_PKEY_MPROTECT, 0, 4096, unix.PROT_EXEC),
		"tgkill another process":            call(unix.SYS_TGKILL, 1, 1, uint64(unix.SIGKILL)),
		"kill another process":              call(unix.SYS_KILL, 1, uint64(unix.SIGKILL)),
		"kill every process":                call(unix.SYS_KILL, ^uint64(0), uint64(unix.SIGKILL)),
		"prctl PR_SET_SECCOMP":              call(unix.SYS_PRCTL, unix.PR_SET_SECCOMP),
		"prctl with PR_SET_VMA's high bits": call(unix.SYS_PRCTL, 1<<32|unix.PR_SET_VMA, unix.PR_SET_VMA_ANON_NAME),
		"arch_prctl ARCH_SET_GS":            call(unix.SYS_ARCH_PRCTL, 0x1001),
		"clone a thread sharing no files":   call(unix.SYS_CLONE, threadCloneFlags&^unix.CLONE_FILES|unix.CLONE_SETTLS),
		"ioctl KVM_CREATE_VM":               call(unix.SYS_IOCTL, 10, reqKVMCreateVM),
		"ioctl KVM_CREATE_VCPU":             call(unix.SYS_IOCTL, 11, reqKVMCreateVCPU),
		"ioctl KVM_SET_REGS":                call(unix.SYS_IOCTL, 12, reqKVMSetRegs),
		"ioctl KVM_SET_MSRS":                call(unix.SYS_IOCTL, 12, reqKVMSetMSRs),
		"ioctl KVM_SET_GUEST_DEBUG":         call(unix.SYS_IOCTL, 12, reqKVMSetGuestDbg),
		"ioctl TUNSETIFF":                   call(unix.SYS_IOCTL, 13, unix.TUNSETIFF),
		"ioctl TIOCSTI (fake tty input)":    call(unix.SYS_IOCTL, 0, unix.TIOCSTI),
		"ioctl KVM_RUN with high bits":      call(unix.SYS_IOCTL, 12, 1<<32|reqKVMRun),
	}
	for name, d := range forbidden {
		if got := verdict(t, prog, d); got&retActionFull != retTrap {
			t.Errorf("%s: verdict %#x, want trap", name, got)
		}
	}
}

// Go code never makes an i386 (int 0x80) or x32 call: one is injected
// code, and it kills tern even in audit mode.
func TestOtherArchitecturesAndX32AreKilled(t *testing.T) {
	for _, m := range []Mode{Enforce, Audit} {
		prog := mustProgram(t, m)
		// read is allowed for x86-64; as i386's int 0x80 its number
		// (3, close there) must not be judged by the x86-64 table.
		d := call(unix.SYS_READ)
		d.arch = auditArchI386
		if got := verdict(t, prog, d); got != retKillProcess {
			t.Errorf("%v: an i386 call got %#x, want kill", m, got)
		}
		// x32 calls are x86-64 calls with bit 30 set in the number.
		if got := verdict(t, prog, call(x32SyscallBit|unix.SYS_READ)); got != retKillProcess {
			t.Errorf("%v: an x32 read got %#x, want kill", m, got)
		}
	}
}

func TestAuditModeLogsWhatEnforceTraps(t *testing.T) {
	enforce, audit := mustProgram(t, Enforce), mustProgram(t, Audit)
	for _, d := range []seccompData{call(unix.SYS_EXECVE), call(unix.SYS_IOCTL, 12, reqKVMSetRegs), call(unix.SYS_SOCKET, unix.AF_NETLINK)} {
		if got := verdict(t, audit, d); got != retLog {
			t.Errorf("audit: syscall %d %#x: verdict %#x, want log", d.nr, d.args[:2], got)
		}
		if got := verdict(t, enforce, d); got&retActionFull != retTrap {
			t.Errorf("enforce: syscall %d %#x: verdict %#x, want trap", d.nr, d.args[:2], got)
		}
	}
	if got := verdict(t, audit, call(unix.SYS_IOCTL, 12, reqKVMRun)); got != retAllow {
		t.Errorf("audit: KVM_RUN: verdict %#x, want allow", got)
	}
}

func TestProgramRefusesUnknownMode(t *testing.T) {
	if _, err := Program(0, testPID); err == nil {
		t.Error("mode 0 gave a filter")
	}
}

// The assembled program (a binary search over syscall numbers) says of
// every syscall number what the rules say, read directly: with no
// arguments, with each value a rule compares an argument with, and with
// that value's bits flipped.
func TestProgramAgreesWithTheRulesForEveryNumber(t *testing.T) {
	for _, mode := range []Mode{Enforce, Audit} {
		prog := mustProgram(t, mode)
		values, err := RuleValues(testPID)
		if err != nil {
			t.Fatal(err)
		}
		var argSets [][6]uint64
		argSets = append(argSets, [6]uint64{})
		for _, v := range values {
			for _, x := range []uint64{v[1], v[1] ^ 1, v[1] | 1<<40, ^v[1]} {
				var a [6]uint64
				a[v[0]] = x
				argSets = append(argSets, a)
			}
		}
		numbers := []uintptr{1 << 20, 0x3fffffff}
		for nr := uintptr(0); nr < 600; nr++ {
			numbers = append(numbers, nr)
		}
		for _, nr := range numbers {
			for _, a := range argSets {
				d := seccompData{nr: int32(nr), arch: auditArchX86_64, args: a}
				got := verdict(t, prog, d)
				want, err := ReferenceVerdict(mode, testPID, nr, a)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("%s: syscall %d args %#x: the program says %#x, the rules %#x", mode, nr, a, got, want)
				}
			}
		}
	}
}
