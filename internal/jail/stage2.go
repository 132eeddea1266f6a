package jail

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsStage2 reports whether this process is a jail's second stage.
func IsStage2() bool {
	_, ok := os.LookupEnv(StageEnv)
	return ok
}

// RunStage2 is the second stage: it builds the jail around this process
// and execs the program. It never returns: on failure it reports to the
// first stage and exits 1. Call it from main before anything else, when
// IsStage2 is true.
func RunStage2() {
	// Capabilities, the bounding set and no_new_privs belong to a thread;
	// the exec'd program inherits the exec'ing thread's. Everything below
	// runs on this one thread, and the exec happens on it.
	runtime.LockOSThread()
	// A stray StageEnv in a user's environment must not make tern read
	// or write descriptors it was never given.
	for _, fd := range []int{specFD, statusFD} {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
			fmt.Fprintf(os.Stderr, "tern: %s is set, but this process was not started by tern jail\n", StageEnv)
			os.Exit(1)
		}
	}
	status := os.NewFile(statusFD, "jail status")
	unix.CloseOnExec(statusFD)
	err := stage2()
	fmt.Fprintf(status, "%v\n", err)
	os.Exit(1)
}

func stage2() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("jail: %v", r)
		}
	}()
	in := os.NewFile(specFD, "jail spec")
	var sp spec
	err = json.NewDecoder(io.LimitReader(in, 1<<20)).Decode(&sp)
	in.Close()
	if err != nil {
		return fmt.Errorf("jail: read the spec (is this process started by tern jail?): %w", err)
	}
	if sp.NetNS != "" {
		if err := joinNetNS(sp.NetNS); err != nil {
			return err
		}
	}
	// What the jail takes from the host is opened now, while host paths
	// still resolve.
	exe, err := os.Open(sp.ExecFile)
	if err != nil {
		return fmt.Errorf("exec file: %w", err)
	}
	defer exe.Close()
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	trees := make([]int, len(sp.Binds))
	for i, b := range sp.Binds {
		fd, err := unix.OpenTree(unix.AT_FDCWD, b.Source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("bind %s: %w", b.Source, err)
		}
		defer unix.Close(fd)
		trees[i] = fd
	}
	if err := pivot(sp.Root); err != nil {
		return err
	}
	// From here on every path resolves inside the jail: a link planted
	// there by an earlier jailed program can point nowhere else.
	if err := makeDevices(sp.UID, sp.GID); err != nil {
		return err
	}
	if sp.MountProc {
		if err := mountProc(); err != nil {
			return err
		}
	}
	if err := copyExec(exe, "/"+sp.ExecName); err != nil {
		return err
	}
	for i, b := range sp.Binds {
		if err := mountBind(trees[i], b); err != nil {
			return err
		}
	}
	// The program may make its API socket, console log and snapshots in
	// its root.
	if err := unix.Lchown("/", sp.UID, sp.GID); err != nil {
		return fmt.Errorf("chown the jail root: %w", err)
	}
	// Limits come last: a small fsize must not stop the copy above.
	if err := setLimits(sp); err != nil {
		return err
	}
	if err := dropPrivileges(sp.UID, sp.GID); err != nil {
		return err
	}
	// Descriptors this process inherited without close-on-exec (from
	// whoever started tern jail) would carry host files into the jail;
	// only stdin, stdout and stderr go through the exec.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark descriptors close-on-exec: %w", err)
	}
	argv := append([]string{"/" + sp.ExecName}, sp.Args...)
	err = syscall.Exec(argv[0], argv, []string{})
	return fmt.Errorf("exec %s in the jail: %w", argv[0], err)
}

// joinNetNS moves this thread, and so the program it execs, into the
// network namespace at path.
func joinNetNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("--netns: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("--netns: join %s: %w", path, err)
	}
	return nil
}

// pivot makes root this mount namespace's root and detaches the host's.
// pivot_root(".", ".") stacks the old root on the new one, so no
// directory for it is needed in the jail; unmounting "." then takes the
// old root away.
func pivot(root string) error {
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the jail root %s: %w", root, err)
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("enter the jail root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		if err == unix.EINVAL {
			return fmt.Errorf("pivot_root to %s: %w (is / the initramfs? the kernel cannot pivot away from it: run tern jail from a root that is a mount of its own, as after switch_root)", root, err)
		}
		return fmt.Errorf("pivot_root to %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// makeDevices makes /dev/kvm and /dev/net/tun, owned by the program's
// uid and gid and readable and writable by them only. Nodes left by an
// earlier run are replaced.
func makeDevices(uid, gid int) error {
	for _, d := range []string{"/dev", "/dev/net"} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("jail %s: %w", d, err)
		}
	}
	for _, n := range []struct {
		path  string
		minor uint32
	}{{"/dev/kvm", kvmMinor}, {"/dev/net/tun", tunMinor}} {
		if err := unix.Unlink(n.path); err != nil && err != unix.ENOENT {
			return fmt.Errorf("jail %s: remove the old one: %w", n.path, err)
		}
		if err := unix.Mknod(n.path, unix.S_IFCHR|0o600, int(unix.Mkdev(miscMajor, n.minor))); err != nil {
			return fmt.Errorf("jail: mknod %s: %w", n.path, err)
		}
		if err := unix.Lchown(n.path, uid, gid); err != nil {
			return fmt.Errorf("jail: chown %s: %w", n.path, err)
		}
	}
	return nil
}

// mountProc mounts, read-only, a /proc that holds only the processes of
// the jail's own PID namespace and none of the kernel's global files
// (subset=pid), for what tern reads about itself there (its page map, to
// snapshot only the guest pages that exist). Without a PID namespace of
// its own a jail gets no /proc: it would list the host's processes.
func mountProc() error {
	if err := os.Mkdir("/proc", 0o555); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("jail /proc: %w", err)
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("proc", "/proc", "proc", flags, "subset=pid,hidepid=invisible"); err != nil {
		return fmt.Errorf("jail: mount /proc (subset=pid needs Linux 5.8): %w", err)
	}
	return nil
}

// copyExec copies the program into the jail, root-owned and mode 0755,
// under a temporary name first so a reader never sees half of it.
func copyExec(src *os.File, dst string) error {
	tmp := dst + ".jail-tmp"
	if err := unix.Unlink(tmp); err != nil && err != unix.ENOENT {
		return fmt.Errorf("copy the exec file: %w", err)
	}
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o755)
	if err != nil {
		return fmt.Errorf("copy the exec file: %w", err)
	}
	_, err = io.Copy(out, src)
	if err == nil {
		err = out.Chmod(0o755)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy the exec file to %s: %w", dst, err)
	}
	return nil
}

// mountBind attaches the detached mount tree at b.Dest, creating the
// mount point (and the directories above it) when missing.
func mountBind(tree int, b Bind) error {
	var st unix.Stat_t
	if err := unix.Fstat(tree, &st); err != nil {
		return fmt.Errorf("bind %s: %w", b.Source, err)
	}
	if err := os.MkdirAll(filepath.Dir(b.Dest), 0o755); err != nil {
		return fmt.Errorf("bind %s: %w", b.Source, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.Mkdir(b.Dest, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("bind %s: %w", b.Source, err)
		}
	} else {
		f, err := os.OpenFile(b.Dest, os.O_RDONLY|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("bind %s: mount point %s: %w", b.Source, b.Dest, err)
		}
		f.Close()
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, b.Dest, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("bind %s at %s: %w", b.Source, b.Dest, err)
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if b.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", b.Dest, "", flags, ""); err != nil {
		return fmt.Errorf("bind %s at %s: remount nosuid,nodev,noexec: %w", b.Source, b.Dest, err)
	}
	return nil
}

func setLimits(sp spec) error {
	// syscall.Setrlimit, not unix.Setrlimit: it tells the Go runtime not
	// to restore its own start-up NOFILE limit at the exec.
	set := func(res int, name string, v uint64) error {
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("--resource-limit %s=%d: %w", name, v, err)
		}
		return nil
	}
	if sp.FSize != nil {
		if err := set(unix.RLIMIT_FSIZE, "fsize", *sp.FSize); err != nil {
			return err
		}
	}
	return set(unix.RLIMIT_NOFILE, "no-file", sp.NoFile)
}
