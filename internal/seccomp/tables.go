package seccomp

import (
	"fmt"

	"github.com/ternvm/tern/kvm"
	"golang.org/x/sys/unix"
)

// rules is tern's allow-list for its run phase: from the guest's first
// instruction to tern's exit. It was found by reading tern's code paths
// after vmm.Start (vCPU loop, devices, API, pause, snapshot, migration
// send and receive, teardown) and the Go runtime's own calls
// (runtime/sys_linux_amd64.s, os_linux.go, mem_linux.go,
// netpoll_epoll.go, set_vma_name_linux.go). What is done only while the
// VM is built (creating vCPUs, guest memory, TAPs, listening sockets,
// loading the kernel) is left out on purpose. pid is tern's own.
func rules(pid int) ([]sysRule, error) {
	ioctls, err := ioctlRules()
	if err != nil {
		return nil, err
	}
	// ioctl first: KVM_RUN comes at every guest exit. The kernel caches
	// the verdict of calls allowed whatever their arguments, so the
	// length of the list costs those nothing.
	rs := ioctls
	for _, f := range socketFamilies {
		rs = append(rs, allowIf(unix.SYS_SOCKET, eq(0, f)))
	}
	rs = append(rs,
		// No executable mappings: tern loads no code after start.
		allowIf(unix.SYS_MMAP, bitsClear(2, unix.PROT_EXEC)),
		allowIf(unix.SYS_MPROTECT, bitsClear(2, unix.PROT_EXEC)),
		// New threads only (runtime.newosproc and runtime·clone,
		// which adds CLONE_SETTLS): no fork, no vfork for an exec,
		// no new namespaces.
		allowIf(unix.SYS_CLONE, eq(0, threadCloneFlags|unix.CLONE_SETTLS)),
		allowIf(unix.SYS_CLONE, eq(0, threadCloneFlags)),
		// The runtime names its mappings ("[anon: Go: heap]").
		allowIf(unix.SYS_PRCTL, eq(0, unix.PR_SET_VMA), eq(1, unix.PR_SET_VMA_ANON_NAME)),
		// Signals to this process only: preemption, vCPU kicks, the
		// runtime raising a signal on itself.
		allowIf(unix.SYS_TGKILL, eq(0, uint64(pid))),
		allowIf(unix.SYS_KILL, eq(0, uint64(pid))),
	)
	rs = append(rs, allow(
		// Go runtime: threads, scheduling, memory, signals, time.
		unix.SYS_FUTEX, unix.SYS_SCHED_YIELD, unix.SYS_NANOSLEEP, unix.SYS_RESTART_SYSCALL,
		unix.SYS_EXIT, unix.SYS_EXIT_GROUP, unix.SYS_GETTID, unix.SYS_GETPID,
		unix.SYS_SIGALTSTACK, unix.SYS_RT_SIGPROCMASK, unix.SYS_RT_SIGACTION, unix.SYS_RT_SIGRETURN,
		unix.SYS_MUNMAP, unix.SYS_MADVISE, // scavenging the heap; the balloon releasing guest pages
		unix.SYS_CLOCK_GETTIME, unix.SYS_GETTIMEOFDAY, // when the vDSO is missing
		unix.SYS_GETRANDOM,                                            // the runtime, crypto/rand, virtio-rng
		unix.SYS_SCHED_GETAFFINITY, unix.SYS_OPENAT, unix.SYS_PREAD64, // GOMAXPROCS re-reads CPU sets and cgroup cpu.max
		unix.SYS_EPOLL_CREATE1, unix.SYS_EPOLL_CTL, unix.SYS_EPOLL_PWAIT, unix.SYS_EVENTFD2, // the netpoller, set up lazily

		// Files: console (pwritev2: the vCPU's RWF_NOWAIT writes) and
		// log output, disks, snapshots, a migration's disk copies,
		// /proc/self/pagemap, TLS keys, resolv.conf.
		unix.SYS_READ, unix.SYS_WRITE, unix.SYS_WRITEV, unix.SYS_CLOSE, unix.SYS_PWRITE64, unix.SYS_PWRITEV2, unix.SYS_LSEEK,
		unix.SYS_FSTAT, unix.SYS_NEWFSTATAT, unix.SYS_FCNTL,
		unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNC_FILE_RANGE, unix.SYS_FALLOCATE, unix.SYS_FTRUNCATE, unix.SYS_FLOCK,
		unix.SYS_MKDIRAT, unix.SYS_UNLINKAT, unix.SYS_RENAMEAT,
		unix.SYS_GETDENTS64, // os.RemoveAll of a failed snapshot's temporary directory

		// Sockets: API and vsock connections, migration (TCP or Unix,
		// DNS over UDP, TLS), the IPv6 probe of Go's net package.
		unix.SYS_CONNECT, unix.SYS_ACCEPT4, unix.SYS_BIND, unix.SYS_SHUTDOWN,
		unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME, unix.SYS_SETSOCKOPT, unix.SYS_GETSOCKOPT,
		unix.SYS_UNAME, // os.Hostname for the resolver, where /proc is missing
	)...)
	return rs, nil
}

// socketFamilies are the address families socket() may open: Unix sockets
// (API, vsock, migration), IPv4 and IPv6 (migration over TCP, DNS). No
// netlink, no packet sockets, no vsock of the host's own.
var socketFamilies = []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}

// kvmRequests are the KVM ioctls of the run phase, named as in kvm.h.
// KVM_RUN is first: requests are tested in this order.
var kvmRequests = []string{
	"KVM_RUN",
	// resume (and after a restore)
	"KVM_KVMCLOCK_CTRL",
	// a vCPU's state, read on its thread by snapshot and migration
	"KVM_GET_CPUID2", "KVM_GET_MP_STATE", "KVM_GET_REGS", "KVM_GET_SREGS", "KVM_GET_FPU",
	"KVM_GET_XSAVE", "KVM_GET_XCRS", "KVM_GET_DEBUGREGS", "KVM_GET_LAPIC", "KVM_GET_MSRS",
	"KVM_GET_VCPU_EVENTS", "KVM_GET_TSC_KHZ",
	// the VM's state and its dirty pages (snapshot, migration)
	"KVM_GET_MSR_INDEX_LIST", "KVM_GET_CLOCK", "KVM_GET_IRQCHIP", "KVM_GET_PIT2",
	"KVM_GET_DIRTY_LOG",
	// a migration turns dirty logging on and off for the RAM slots
	"KVM_SET_USER_MEMORY_REGION",
	// teardown unregisters the queue notifiers and interrupt lines
	"KVM_IOEVENTFD", "KVM_IRQFD",
}

// otherRequests are the ioctls outside KVM: virtio-net tells its TAP
// which offloads the guest's driver accepted once the driver is up; logrus
// asks once, at its first line (which comes after the guest starts at
// --log-level warn), whether stderr is a terminal.
var otherRequests = []uint64{unix.TUNSETOFFLOAD, unix.TCGETS}

// ioctlRules allows ioctl for those requests and no other.
func ioctlRules() ([]sysRule, error) {
	var rs []sysRule
	for _, name := range kvmRequests {
		n, err := kvm.RequestNumber(name)
		if err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
		rs = append(rs, allowIf(unix.SYS_IOCTL, eq(1, uint64(n))))
	}
	for _, r := range otherRequests {
		rs = append(rs, allowIf(unix.SYS_IOCTL, eq(1, r)))
	}
	return rs, nil
}

// threadCloneFlags are the flags the Go runtime's newosproc passes to
// clone for a thread.
const threadCloneFlags = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD
