// Package jail starts a program (tern) confined the way Firecracker's jailer
// confines Firecracker: in its own mount namespace with a pivot_root'ed
// chroot that holds only the program, /dev/kvm, /dev/net/tun and the files
// it was given; in a new network namespace (or one the caller names), and a
// new PID namespace if asked; in a cgroup v2 with the limits asked for; with
// resource limits; as an unprivileged uid and gid with no supplementary
// groups, no capabilities in any set and no_new_privs.
//
// Two stages, because a Go program cannot unshare its mount namespace once
// its runtime has started threads (unshare(CLONE_NEWNS) needs a process
// whose filesystem state no other thread shares). Start runs in the
// caller's process: it checks the Config, prepares the jail directory and
// the cgroup, and re-executes the running binary (/proc/self/exe) with
// StageEnv set, cloned straight into the new namespaces and the cgroup
// (clone3 with CLONE_INTO_CGROUP, through os/exec's SysProcAttr). That
// child's main must call RunStage2 before doing anything else; it builds
// the chroot, drops privileges on one locked OS thread and execs the
// program from that same thread, so the program inherits exactly that
// thread's credentials. Errors before the exec come back to Start over a
// close-on-exec pipe; the pipe closing empty means the exec happened.
package jail

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Defaults, as Firecracker's jailer has them.
const (
	// DefaultChrootBase is where jails are built: BASE/<exec name>/<id>/root.
	DefaultChrootBase = "/srv/jailer"
	// DefaultNoFile bounds the open files of a jailed program when no
	// no-file limit is given.
	DefaultNoFile = 2048
	// MaxIDLen is the longest --id accepted.
	MaxIDLen = 64
)

// The character devices made inside every jail: the kernel's fixed misc
// device numbers (include/linux/miscdevice.h: KVM_MINOR 232, TUN_MINOR
// 200 on MISC_MAJOR 10).
const (
	miscMajor = 10
	kvmMinor  = 232
	tunMinor  = 200
)

// Config is what a jail is made of. Zero values mean the defaults.
type Config struct {
	// ID names the jail: 1 to 64 ASCII letters, digits and '-'.
	ID string
	// ExecFile is the program to copy into the jail and run there.
	ExecFile string
	// UID and GID are what the program runs as.
	UID, GID int
	// ChrootBase is where jails are built; "" means DefaultChrootBase.
	ChrootBase string
	// NetNS is the path of a network namespace to join (e.g.
	// /var/run/netns/NAME); "" gives the program a new, empty one.
	NetNS string
	// NewPIDNS runs the program as PID 1 of a new PID namespace.
	NewPIDNS bool
	// Cgroup holds cgroup v2 files to write (e.g. memory.max=256M). If it
	// or ParentCgroup is set, the program runs in the cgroup
	// PARENT/ID of the cgroup v2 hierarchy.
	Cgroup []CgroupSetting
	// ParentCgroup is the cgroup, relative to the hierarchy's root, in
	// which the jail's own cgroup is made; "" means the exec file's name.
	ParentCgroup string
	// Limits are the resource limits set before the exec.
	Limits Limits
	// Binds are host files or directories mounted into the jail.
	Binds []Bind
	// Daemonize detaches the program: a new session, stdio on /dev/null,
	// and Start's caller need not wait for it.
	Daemonize bool
	// Args are passed to the program after its name.
	Args []string
}

// CgroupSetting is one cgroup v2 file and the value written to it.
type CgroupSetting struct {
	File, Value string
}

// Limits are the resource limits Firecracker's jailer knows; nil leaves a
// limit as inherited, except NoFile, which nil sets to DefaultNoFile.
type Limits struct {
	// FSize is the largest file the program may write (RLIMIT_FSIZE).
	FSize *uint64
	// NoFile is one more than the highest descriptor it may open
	// (RLIMIT_NOFILE).
	NoFile *uint64
}

// Bind mounts a host file or directory into the jail.
type Bind struct {
	// Source is the host path.
	Source string
	// Dest is the absolute path inside the jail.
	Dest string
	// ReadOnly makes the mount read-only.
	ReadOnly bool
}

// ExecName is the exec file's name, which names its directory under the
// chroot base, its copy in the jail and its cgroup parent.
func (c *Config) ExecName() string { return filepath.Base(c.ExecFile) }

// Dir is the jail's directory, BASE/<exec name>/<id>.
func (c *Config) Dir() string {
	base := c.ChrootBase
	if base == "" {
		base = DefaultChrootBase
	}
	return filepath.Join(base, c.ExecName(), c.ID)
}

// Root is the directory that becomes / for the program: Dir()/root.
func (c *Config) Root() string { return filepath.Join(c.Dir(), "root") }

// PIDFile is where Start records the program's PID (as the host sees
// it): <exec name>.pid in the jail's root.
func (c *Config) PIDFile() string { return filepath.Join(c.Root(), c.ExecName()+".pid") }

// CgroupPath is the jail's cgroup relative to the cgroup v2 root, or ""
// when the jail gets no cgroup of its own.
func (c *Config) CgroupPath() string {
	if len(c.Cgroup) == 0 && c.ParentCgroup == "" {
		return ""
	}
	parent := c.ParentCgroup
	if parent == "" {
		parent = c.ExecName()
	}
	return path.Join(parent, c.ID)
}

// CheckID reports whether id is a valid jail id.
func CheckID(id string) error {
	switch {
	case id == "":
		return errors.New("--id is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("--id %q is %d characters long; the most is %d", id, len(id), MaxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Errorf("--id %q: %q is not allowed (letters, digits and '-' only)", id, r)
		}
	}
	return nil
}

// Check validates everything that can be checked without changing the
// host: the id, that the exec file is a regular file, the paths, the
// cgroup and limit settings, the network namespace. It does not check
// that the caller is root; Start does.
func (c *Config) Check() error {
	if err := CheckID(c.ID); err != nil {
		return err
	}
	if c.ExecFile == "" {
		return errors.New("--exec-file is required")
	}
	fi, err := os.Stat(c.ExecFile)
	if err != nil {
		return fmt.Errorf("--exec-file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("--exec-file %s is not a regular file", c.ExecFile)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("--exec-file %s is not executable", c.ExecFile)
	}
	if c.UID < 0 || c.GID < 0 {
		return fmt.Errorf("uid %d / gid %d: negative", c.UID, c.GID)
	}
	if c.ChrootBase != "" && !filepath.IsAbs(c.ChrootBase) {
		return fmt.Errorf("--chroot-base-dir %q is not an absolute path", c.ChrootBase)
	}
	if c.ParentCgroup != "" {
		if err := checkRelPath(c.ParentCgroup); err != nil {
			return fmt.Errorf("--parent-cgroup: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, s := range c.Cgroup {
		if err := checkCgroupFile(s.File); err != nil {
			return err
		}
		if seen[s.File] {
			return fmt.Errorf("--cgroup %s is given twice", s.File)
		}
		seen[s.File] = true
	}
	dests := map[string]bool{"/dev": true, "/" + c.ExecName(): true, "/" + c.ExecName() + ".pid": true}
	for _, b := range c.Binds {
		if err := b.check(); err != nil {
			return err
		}
		for d := range dests {
			if b.Dest == d || strings.HasPrefix(b.Dest, d+"/") {
				return fmt.Errorf("bind %s: %s is taken in the jail (by the jailer or another bind)", b.Source, b.Dest)
			}
		}
		dests[b.Dest] = true
	}
	if c.NetNS != "" {
		if err := checkNetNS(c.NetNS); err != nil {
			return err
		}
	}
	return nil
}

func (b Bind) check() error {
	if !filepath.IsAbs(b.Source) {
		return fmt.Errorf("bind %s: the source is not an absolute path", b.Source)
	}
	fi, err := os.Stat(b.Source)
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return fmt.Errorf("bind %s: neither a regular file nor a directory", b.Source)
	}
	if !filepath.IsAbs(b.Dest) || filepath.Clean(b.Dest) != b.Dest || b.Dest == "/" {
		return fmt.Errorf("bind %s: destination %q is not a clean absolute path below /", b.Source, b.Dest)
	}
	return nil
}

// checkRelPath accepts a clean relative path that stays below its base.
func checkRelPath(p string) error {
	if strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q is not a clean relative path (like vms or vms/batch)", p)
	}
	return nil
}

// checkCgroupFile accepts a cgroup interface file name: CONTROLLER.NAME,
// one path component.
func checkCgroupFile(f string) error {
	ctrl, name, ok := strings.Cut(f, ".")
	if !ok || ctrl == "" || name == "" || strings.ContainsAny(f, "/\x00") || f == ".." {
		return fmt.Errorf("--cgroup %q is not a cgroup file name like memory.max", f)
	}
	return nil
}

// ParseCgroup parses a --cgroup value, FILE=VALUE.
func ParseCgroup(s string) (CgroupSetting, error) {
	f, v, ok := strings.Cut(s, "=")
	if !ok {
		return CgroupSetting{}, fmt.Errorf("--cgroup %q: want FILE=VALUE, e.g. memory.max=512M", s)
	}
	if err := checkCgroupFile(f); err != nil {
		return CgroupSetting{}, err
	}
	if v == "" || strings.ContainsAny(v, "\n\x00") {
		return CgroupSetting{}, fmt.Errorf("--cgroup %s: the value %q is empty or spans lines", f, v)
	}
	return CgroupSetting{File: f, Value: v}, nil
}

// ParseLimit parses a --resource-limit value, fsize=N or no-file=N, into
// l; a resource given twice is an error.
func ParseLimit(l *Limits, s string) error {
	name, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("--resource-limit %q: want RESOURCE=VALUE, e.g. no-file=1024", s)
	}
	var dst **uint64
	switch name {
	case "fsize":
		dst = &l.FSize
	case "no-file":
		dst = &l.NoFile
	default:
		return fmt.Errorf("--resource-limit %q: unknown resource %q (fsize or no-file)", s, name)
	}
	if *dst != nil {
		return fmt.Errorf("--resource-limit %s is given twice", name)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return fmt.Errorf("--resource-limit %s=%q is not a number", name, v)
	}
	if name == "no-file" && n < 3 {
		return fmt.Errorf("--resource-limit no-file=%d leaves no room for stdin, stdout and stderr", n)
	}
	*dst = &n
	return nil
}

// ParseBind parses a bind value, SOURCE or SOURCE:DEST; DEST defaults to
// /<name of SOURCE>.
func ParseBind(s string, readOnly bool) (Bind, error) {
	src, dst, ok := strings.Cut(s, ":")
	if src == "" {
		return Bind{}, fmt.Errorf("bind %q: want SOURCE or SOURCE:DEST", s)
	}
	if !ok {
		dst = "/" + filepath.Base(src)
	}
	return Bind{Source: src, Dest: dst, ReadOnly: readOnly}, nil
}

// ParseID parses a numeric uid or gid; which names it in errors.
func ParseID(which, s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, fmt.Errorf("--%s %q is not a number (a numeric %s, 0 to 4294967294)", which, s, which)
	}
	return int(n), nil
}
