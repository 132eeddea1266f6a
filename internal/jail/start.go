package jail

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// StageEnv marks the re-executed child as the jail's second stage; its
// value is ignored.
const StageEnv = "TERN_JAIL_STAGE2"

// The child's extra descriptors: the spec to read, the status to write.
const (
	specFD   = 3
	statusFD = 4
)

// spec is what the second stage needs, sent as JSON over a pipe.
type spec struct {
	Root      string   `json:"root"`
	ExecName  string   `json:"exec_name"`
	ExecFile  string   `json:"exec_file"`
	UID       int      `json:"uid"`
	GID       int      `json:"gid"`
	NetNS     string   `json:"netns,omitempty"`
	Binds     []Bind   `json:"binds,omitempty"`
	FSize     *uint64  `json:"fsize,omitempty"`
	NoFile    uint64   `json:"no_file"`
	Args      []string `json:"args"`
	MountProc bool     `json:"mount_proc,omitempty"`
}

// Process is a jailed program that Start started.
type Process struct {
	// Pid is the program's PID as the caller sees it.
	Pid    int
	cmd    *exec.Cmd
	cg     *cgroup
	waited bool
}

// Start checks cfg, prepares the jail and starts the program in it. It
// returns once the program has been exec'd in the jail, or with the
// reason it could not be. stdin, stdout and stderr are the program's
// (ignored with Daemonize, which gives it /dev/null). The caller must be
// root; its binary's main must call RunStage2 first thing.
func Start(cfg Config, stdin io.Reader, stdout, stderr io.Writer) (*Process, error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	// The second stage starts in /, so relative paths are made absolute
	// here, where they were meant.
	for _, p := range []*string{&cfg.ExecFile, &cfg.NetNS} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	root := cfg.Root()
	if err := prepareRoot(root); err != nil {
		return nil, err
	}
	sp := spec{
		Root: root, ExecName: cfg.ExecName(), ExecFile: cfg.ExecFile,
		UID: cfg.UID, GID: cfg.GID, NetNS: cfg.NetNS, Binds: cfg.Binds,
		FSize: cfg.Limits.FSize, NoFile: DefaultNoFile, Args: cfg.Args, MountProc: cfg.NewPIDNS,
	}
	if cfg.Limits.NoFile != nil {
		sp.NoFile = *cfg.Limits.NoFile
	}
	var cg *cgroup
	if rel := cfg.CgroupPath(); rel != "" {
		mi, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			return nil, err
		}
		mount, err := cgroup2Mount(mi)
		mi.Close()
		if err != nil {
			return nil, err
		}
		if cg, err = makeCgroup(mount, rel, cfg.Cgroup); err != nil {
			return nil, err
		}
	}
	p, err := start(cfg, sp, cg, stdin, stdout, stderr)
	if err != nil {
		cg.remove()
		return nil, err
	}
	return p, nil
}

// RequireRoot reports whether this process can make a jail.
func RequireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("tern jail must run as root: it makes namespaces, device nodes and cgroups, then drops to --uid/--gid")
	}
	return nil
}

// prepareRoot makes the jail's root directory. An existing one is reused
// (callers may have linked files into it beforehand, as with
// Firecracker's jailer), but it must be a real directory, not a link.
func prepareRoot(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("jail directory: %w", err)
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("jail directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("jail directory %s is not a directory (a symbolic link?)", root)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return fmt.Errorf("jail directory: %w", err)
	}
	// Device nodes on a nodev mount do not open; a program on a noexec
	// mount does not run. Say so now rather than fail inside the jail.
	if st.Flags&(unix.ST_NODEV|unix.ST_NOEXEC) != 0 {
		return fmt.Errorf("jail directory %s is on a filesystem mounted nodev or noexec: /dev/kvm or the program would not work there; pick another --chroot-base-dir", root)
	}
	return nil
}

func start(cfg Config, sp spec, cg *cgroup, stdin io.Reader, stdout, stderr io.Writer) (*Process, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer specR.Close()
	defer specW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()
	defer statusW.Close()

	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"tern-jail-stage2"}
	// Nothing of the caller's environment reaches the jail.
	cmd.Env = []string{StageEnv + "=1"}
	cmd.ExtraFiles = []*os.File{specR, statusW}
	cmd.Dir = "/"
	flags := uintptr(unix.CLONE_NEWNS)
	if cfg.NetNS == "" {
		flags |= unix.CLONE_NEWNET
	}
	if cfg.NewPIDNS {
		flags |= unix.CLONE_NEWPID
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	if cg != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cg.dir.Fd())
	}
	if cfg.Daemonize {
		cmd.SysProcAttr.Setsid = true
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the jail: %w", err)
	}
	statusW.Close()
	p := &Process{Pid: cmd.Process.Pid, cmd: cmd, cg: cg}
	fail := func(err error) (*Process, error) {
		cmd.Process.Kill()
		p.Wait()
		return nil, err
	}
	// The PID file is written before the child gets its spec, so before
	// anything runs in the jail that could plant a link under its name.
	if err := writePIDFile(cfg.Root(), cfg.ExecName()+".pid", p.Pid); err != nil {
		return fail(err)
	}
	if err := json.NewEncoder(specW).Encode(sp); err != nil {
		return fail(fmt.Errorf("send the jail its spec: %w", err))
	}
	specW.Close()
	msg, err := io.ReadAll(statusR)
	if err != nil {
		return fail(fmt.Errorf("read the jail's status: %w", err))
	}
	if len(msg) > 0 {
		return fail(errors.New(strings.TrimSpace(string(msg))))
	}
	return p, nil
}

// writePIDFile writes pid into dir/name without following a link there
// and without opening anything that already sits under that name.
func writePIDFile(dir, name string, pid int) error {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pid file: open %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, name, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("pid file: remove the old %s/%s: %w", dir, name, err)
	}
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("pid file %s/%s: %w", dir, name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = f.WriteString(strconv.Itoa(pid) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pid file %s/%s: %w", dir, name, err)
	}
	return nil
}

// Signal sends sig to the jailed program.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the jailed program to exit, removes its cgroup, and
// returns its wait status. A daemonized program need not be waited for;
// its cgroup is then left for the caller to remove.
func (p *Process) Wait() (syscall.WaitStatus, error) {
	if p.waited {
		return 0, errors.New("jail: Wait called twice")
	}
	p.waited = true
	err := p.cmd.Wait()
	var ws syscall.WaitStatus
	if p.cmd.ProcessState != nil {
		ws, _ = p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	if rerr := p.cg.remove(); err == nil {
		err = rerr
	}
	return ws, err
}

// Release lets a daemonized program run on without a Wait.
func (p *Process) Release() error {
	if p.cg != nil && p.cg.dir != nil {
		p.cg.dir.Close()
	}
	return p.cmd.Process.Release()
}
