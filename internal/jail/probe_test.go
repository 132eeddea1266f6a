package jail

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// This test binary doubles as the jail's second stage (Start re-executes
// /proc/self/exe) and as the probe it jails: run with probeArg first, it
// reports what it sees from inside.
const (
	probeArg = "jail-probe"
	holdArg  = "jail-hold-netns"
)

func TestMain(m *testing.M) {
	if IsStage2() {
		RunStage2()
	}
	if len(os.Args) > 2 && os.Args[1] == probeArg {
		os.Exit(probe(os.Args[2]))
	}
	if len(os.Args) > 1 && os.Args[1] == holdArg {
		io.Copy(io.Discard, os.Stdin) // keep the namespace alive until told
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// probeIn is what the probe is asked to try.
type probeIn struct {
	HostPID   int      // a host process it should not reach
	HostPaths []string // host paths it should not see
	FSize     uint64   // its file size limit, to write past
	ROFile    string   // a read-only bind (mode 0666 on the host)
	RWFile    string   // a read-write bind (mode 0666 on the host)
}

// probeOut is what it saw.
type probeOut struct {
	PID       int
	Env       []string
	Root      []string          // names in /
	Reach     map[string]string // host path -> "" if it could stat it, else the error
	Dev       map[string]string // device -> "major:minor uid:gid mode" or the error
	KVMAPI    int               // KVM_GET_API_VERSION on the jail's /dev/kvm
	KVMErr    string
	TunErr    string // opening /dev/net/tun
	Ifaces    []string
	KillHost  string // kill(HostPID, 0)
	Mknod     string
	Mount     string
	Setuid    string
	FSizeErr  string // writing FSize+1 bytes
	ROContent string
	ROWrite   string
	RWWrite   string
	Proc      []string // names in /proc
	Pagemap   string   // opening /proc/self/pagemap
}

func errStr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func probe(arg string) int {
	var in probeIn
	if err := json.Unmarshal([]byte(arg), &in); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 2
	}
	out := probeOut{PID: os.Getpid(), Env: os.Environ(), Reach: map[string]string{}, Dev: map[string]string{}}
	ents, _ := os.ReadDir("/")
	for _, e := range ents {
		out.Root = append(out.Root, e.Name())
	}
	for _, p := range in.HostPaths {
		_, err := os.Lstat(p)
		out.Reach[p] = errStr(err)
	}
	for _, d := range []string{"/dev/kvm", "/dev/net/tun"} {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			out.Dev[d] = err.Error()
			continue
		}
		out.Dev[d] = fmt.Sprintf("%d:%d %d:%d %#o", unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Uid, st.Gid, st.Mode)
	}
	if fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		out.KVMErr = err.Error()
	} else {
		const kvmGetAPIVersion = 0xae00 // _IO(KVMIO, 0x00)
		out.KVMAPI, err = unix.IoctlRetInt(fd, kvmGetAPIVersion)
		out.KVMErr = errStr(err)
		unix.Close(fd)
	}
	if fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		out.TunErr = err.Error()
	} else {
		unix.Close(fd)
	}
	out.Ifaces = interfaces()
	out.KillHost = errStr(unix.Kill(in.HostPID, 0))
	out.Mknod = errStr(unix.Mknod("/probe-null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	out.Mount = errStr(unix.Mount("none", "/dev", "tmpfs", 0, ""))
	out.Setuid = errStr(syscall.Setuid(0))
	if in.FSize > 0 {
		// Past the limit a write fails with EFBIG once SIGXFSZ, which
		// would kill the probe, is ignored.
		signal.Ignore(syscall.SIGXFSZ)
		err := os.WriteFile("/probe-fsize", make([]byte, in.FSize+1), 0o600)
		out.FSizeErr = errStr(err)
		os.Remove("/probe-fsize")
	}
	if in.ROFile != "" {
		b, err := os.ReadFile(in.ROFile)
		out.ROContent = string(b) + errStr(err)
		f, err := os.OpenFile(in.ROFile, os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		out.ROWrite = errStr(err)
	}
	if in.RWFile != "" {
		out.RWWrite = errStr(os.WriteFile(in.RWFile, []byte("written in the jail"), 0))
	}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			out.Proc = append(out.Proc, e.Name())
		}
	}
	if f, err := os.Open("/proc/self/pagemap"); err != nil {
		out.Pagemap = err.Error()
	} else {
		f.Close()
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		return 2
	}
	// Stay until the test has looked at us from outside.
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// interfaces lists the network interfaces by index (SIOCGIFNAME), as the
// net package (which may link cgo) is kept out of this test binary.
func interfaces() []string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return []string{"socket: " + err.Error()}
	}
	defer unix.Close(fd)
	var names []string
	for i := uint32(1); i < 256; i++ {
		ifr, _ := unix.NewIfreq("")
		ifr.SetUint32(i)
		if unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr) == nil {
			names = append(names, ifr.Name())
		}
	}
	return names
}

// needRootAndStatic skips unless the test can make jails: as root, with
// this test binary statically linked (the jail holds no shared libraries).
func needRootAndStatic(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making a jail needs root")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked; the probe must run in an empty jail: run with CGO_ENABLED=0", exe)
		}
	}
	return exe
}

// runProbe jails this test binary as the probe under cfg, reads its
// report, runs look on the running probe's PID, then lets it exit and
// checks it exited 0.
func runProbe(t *testing.T, cfg Config, in probeIn, look func(pid int)) probeOut {
	t.Helper()
	arg, _ := json.Marshal(in)
	cfg.Args = []string{probeArg, string(arg)}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	var stderr bytes.Buffer
	p, err := Start(cfg, stdinR, outW, &stderr)
	stdinR.Close()
	outW.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	line, err := bufio.NewReader(outR).ReadBytes('\n')
	var out probeOut
	if err == nil {
		err = json.Unmarshal(line, &out)
	}
	if err != nil {
		stdinW.Close()
		p.Wait()
		t.Fatalf("probe report: %v (stderr %q)", err, stderr.String())
	}
	look(p.Pid)
	stdinW.Close()
	ws, err := p.Wait()
	if err != nil || ws.ExitStatus() != 0 {
		t.Errorf("probe: wait status %v, %v (stderr %q)", ws, err, stderr.String())
	}
	return out
}

// procStatus reads the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func nsOf(t *testing.T, pid, kind string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + kind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testCgroup gives the test a parent cgroup of its own in the cgroup v2
// hierarchy, removed at the end, or "" when none is mounted here. If the
// hierarchy offers hugetlb it also returns a setting of that controller,
// to make the jail enable a controller on the way down; what it enables
// at the root is disabled again at the end.
func testCgroup(t *testing.T) (mount, parent string, extra []CgroupSetting) {
	t.Helper()
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer mi.Close()
	mount, err = cgroup2Mount(mi)
	if err != nil {
		t.Logf("no cgroup v2 here (%v): the cgroup part is left to the nested test host", err)
		return "", "", nil
	}
	parent = fmt.Sprintf("tern-jail-test-%d", os.Getpid())
	rootCtl := filepath.Join(mount, "cgroup.subtree_control")
	before, _ := readWords(rootCtl)
	t.Cleanup(func() {
		os.Remove(filepath.Join(mount, parent))
		if after, _ := readWords(rootCtl); slices.Contains(after, "hugetlb") && !slices.Contains(before, "hugetlb") {
			writeExisting(rootCtl, "-hugetlb")
		}
	})
	offered, _ := readWords(filepath.Join(mount, "cgroup.controllers"))
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err == nil && slices.Contains(offered, "hugetlb") {
		extra = append(extra, CgroupSetting{"hugetlb.2MB.max", "4194304"})
	}
	return mount, parent, extra
}

// TestJailConfinesProbe jails a probe with every confinement on and checks,
// from inside and from outside, that it got exactly what was asked: the
// host's files, processes and another jail out of reach; its uid, gid,
// groups, capabilities, no_new_privs, limits, cgroup and namespaces; the
// two devices and the bound files usable.
func TestJailConfinesProbe(t *testing.T) {
	exe := needRootAndStatic(t)
	base := t.TempDir()
	name := filepath.Base(exe)
	// Another VM's jail beside this one, and a host file.
	other := filepath.Join(base, name, "other-vm", "root", "disk.img")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	for _, f := range []string{other, secret} {
		if err := os.WriteFile(f, []byte("not for the jail"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	roHost, rwHost := filepath.Join(host, "vmlinux"), filepath.Join(host, "disk.img")
	for _, f := range []string{roHost, rwHost} {
		if err := os.WriteFile(f, []byte("image "+filepath.Base(f)), 0o666); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f, 0o666) // past the umask
	}
	fsize, nofile := uint64(100000), uint64(64)
	cfg := Config{
		ID: "probe-1", ExecFile: exe, UID: 4321, GID: 4322, ChrootBase: base, NewPIDNS: true,
		Limits: Limits{FSize: &fsize, NoFile: &nofile},
		Binds:  []Bind{{roHost, "/boot/vmlinux", true}, {rwHost, "/disk.img", false}},
	}
	mount, parent, extra := testCgroup(t)
	if mount != "" {
		cfg.ParentCgroup = parent
		cfg.Cgroup = append([]CgroupSetting{{"cgroup.max.descendants", "2"}}, extra...)
		t.Logf("cgroup %s/%s/probe-1 with %v", mount, parent, cfg.Cgroup)
	}
	hostPaths := []string{"/etc/hostname", "/proc/sys", "/proc/meminfo", "/sys", exe, secret, other,
		"/../other-vm/root/disk.img", "/../../other-vm/root/disk.img"}
	in := probeIn{HostPID: os.Getpid(), HostPaths: hostPaths, FSize: fsize, ROFile: "/boot/vmlinux", RWFile: "/disk.img"}

	self := strconv.Itoa(os.Getpid())
	out := runProbe(t, cfg, in, func(pid int) {
		p := strconv.Itoa(pid)
		st := procStatus(t, pid)
		for k, want := range map[string]string{
			"Uid": "4321\t4321\t4321\t4321", "Gid": "4322\t4322\t4322\t4322", "Groups": "",
			"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
			"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
		} {
			if st[k] != want {
				t.Errorf("/proc/%d/status %s: %q, want %q", pid, k, st[k], want)
			}
		}
		for _, ns := range []string{"mnt", "net", "pid"} {
			if nsOf(t, p, ns) == nsOf(t, self, ns) {
				t.Errorf("the probe shares the host's %s namespace", ns)
			}
		}
		lim, _ := os.ReadFile("/proc/" + p + "/limits")
		for _, re := range []string{`Max open files\s+64\s+64\s`, `Max file size\s+100000\s+100000\s+bytes`} {
			if !matches(re, string(lim)) {
				t.Errorf("/proc/%d/limits has no line like %q:\n%s", pid, re, lim)
			}
		}
		fds, _ := os.ReadDir("/proc/" + p + "/fd")
		for _, fd := range fds {
			l, _ := os.Readlink("/proc/" + p + "/fd/" + fd.Name())
			if strings.HasPrefix(l, "/") {
				t.Errorf("the probe holds descriptor %s on %s", fd.Name(), l)
			}
		}
		pidFile, err := os.ReadFile(cfg.PIDFile())
		if err != nil || strings.TrimSpace(string(pidFile)) != p {
			t.Errorf("PID file %s: %q, %v; want %d", cfg.PIDFile(), pidFile, err, pid)
		}
		if mount == "" {
			return
		}
		cg, _ := os.ReadFile("/proc/" + p + "/cgroup")
		if want := "0::/" + parent + "/probe-1\n"; !strings.Contains(string(cg), want) {
			t.Errorf("/proc/%d/cgroup:\n%s\nwant the line %q", pid, cg, want)
		}
		for _, s := range cfg.Cgroup {
			b, err := os.ReadFile(filepath.Join(mount, parent, "probe-1", s.File))
			if err != nil || strings.TrimSpace(string(b)) != s.Value {
				t.Errorf("cgroup file %s: %q, %v; want %q", s.File, b, err, s.Value)
			}
		}
	})

	if out.PID != 1 {
		t.Errorf("with a new PID namespace the probe is PID %d, want 1", out.PID)
	}
	if len(out.Env) != 0 {
		t.Errorf("the probe's environment is %q, want empty", out.Env)
	}
	wantRoot := []string{"boot", "dev", "disk.img", name, name + ".pid", "proc"}
	if !slices.Equal(out.Root, wantRoot) {
		t.Errorf("the jail's / holds %q, want %q", out.Root, wantRoot)
	}
	for _, p := range hostPaths {
		if e := out.Reach[p]; !strings.Contains(e, "no such file") {
			t.Errorf("inside the jail, lstat %s: %q, want no such file", p, e)
		}
	}
	for d, want := range map[string]string{"/dev/kvm": "10:232 4321:4322 020600", "/dev/net/tun": "10:200 4321:4322 020600"} {
		if out.Dev[d] != want {
			t.Errorf("inside the jail %s is %q, want %q", d, out.Dev[d], want)
		}
	}
	if _, err := os.Stat("/dev/kvm"); err == nil && (out.KVMErr != "" || out.KVMAPI != 12) {
		t.Errorf("the jail's /dev/kvm: KVM_GET_API_VERSION = %d, %q; want 12", out.KVMAPI, out.KVMErr)
	}
	if out.TunErr != "" {
		t.Errorf("the jail's /dev/net/tun does not open: %s", out.TunErr)
	}
	// The new PID namespace's /proc: the probe alone, nothing global.
	if want := []string{"1", "self", "thread-self"}; !slices.Equal(out.Proc, want) || out.Pagemap != "" {
		t.Errorf("the jail's /proc holds %q (pagemap: %q), want %q and a readable /proc/self/pagemap", out.Proc, out.Pagemap, want)
	}
	if !slices.Equal(out.Ifaces, []string{"lo"}) {
		t.Errorf("the probe sees interfaces %q, want only lo (a new network namespace)", out.Ifaces)
	}
	if !strings.Contains(out.KillHost, "no such process") {
		t.Errorf("kill(host test process, 0) from the jail: %q, want no such process", out.KillHost)
	}
	for what, e := range map[string]string{"mknod": out.Mknod, "mount": out.Mount, "setuid(0)": out.Setuid} {
		if !strings.Contains(e, "operation not permitted") {
			t.Errorf("%s in the jail: %q, want operation not permitted", what, e)
		}
	}
	if !strings.Contains(out.FSizeErr, "file too large") {
		t.Errorf("writing past fsize: %q, want file too large", out.FSizeErr)
	}
	if out.ROContent != "image vmlinux" || !strings.Contains(out.ROWrite, "read-only file system") {
		t.Errorf("--bind-ro file: read %q, open for writing %q; want its content and a read-only file system", out.ROContent, out.ROWrite)
	}
	if b, _ := os.ReadFile(rwHost); out.RWWrite != "" || string(b) != "written in the jail" {
		t.Errorf("--bind-rw file: write %q, host sees %q", out.RWWrite, b)
	}
	if mount != "" {
		if _, err := os.Stat(filepath.Join(mount, parent, "probe-1")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the jail's cgroup is still there after it exited: %v", err)
		}
	}
}

// TestJailJoinsNetNS jails the probe in a network namespace held by
// another process, without a new PID namespace: the probe runs in that
// namespace, and host processes, still visible, are out of its reach.
func TestJailJoinsNetNS(t *testing.T) {
	exe := needRootAndStatic(t)
	hold := exec.Command(exe, holdArg)
	hold.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	holdIn, err := hold.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holdIn.Close(); hold.Wait() }()
	netns := fmt.Sprintf("/proc/%d/ns/net", hold.Process.Pid)

	cfg := Config{ID: "probe-2", ExecFile: exe, UID: 4321, GID: 4322, ChrootBase: t.TempDir(), NetNS: netns}
	out := runProbe(t, cfg, probeIn{HostPID: os.Getpid()}, func(pid int) {
		if got, want := nsOf(t, strconv.Itoa(pid), "net"), nsOf(t, strconv.Itoa(hold.Process.Pid), "net"); got != want {
			t.Errorf("the probe's network namespace is %s, want the one at --netns, %s", got, want)
		}
		if nsOf(t, strconv.Itoa(pid), "pid") != nsOf(t, "self", "pid") {
			t.Error("without --new-pid-ns the probe got a PID namespace of its own")
		}
		lim, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		if !matches(`Max open files\s+2048\s+2048\s`, string(lim)) {
			t.Errorf("without a no-file limit given, want Firecracker's default 2048:\n%s", lim)
		}
	})
	if out.PID == 1 {
		t.Error("without --new-pid-ns the probe is PID 1")
	}
	if out.Proc != nil {
		t.Errorf("without a PID namespace of its own the jail has a /proc, holding %q", out.Proc)
	}
	if !strings.Contains(out.KillHost, "operation not permitted") {
		t.Errorf("kill(host test process, 0) from the jail: %q, want operation not permitted", out.KillHost)
	}
}

// TestJailStartErrors checks that what fails only when the jail is built
// fails with a clear error and leaves no process or cgroup behind.
func TestJailStartErrors(t *testing.T) {
	exe := needRootAndStatic(t)
	base := t.TempDir()
	mount, parent, _ := testCgroup(t)
	if mount != "" {
		cfg := Config{ID: "bad-cg", ExecFile: exe, UID: 4321, GID: 4322, ChrootBase: base, ParentCgroup: parent,
			Cgroup: []CgroupSetting{{"cgroup.no-such-file", "1"}}}
		_, err := Start(cfg, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "has no file cgroup.no-such-file") {
			t.Errorf("a cgroup file that does not exist: %v", err)
		}
		cfg.Cgroup = []CgroupSetting{{"nosuchctl.max", "1"}}
		_, err = Start(cfg, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "has no nosuchctl controller") {
			t.Errorf("a controller that does not exist: %v", err)
		}
		cfg.Cgroup = []CgroupSetting{{"cgroup.max.descendants", "lots"}}
		_, err = Start(cfg, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `write "lots"`) {
			t.Errorf("a bad cgroup value: %v", err)
		}
		if _, err := os.Stat(filepath.Join(mount, parent, "bad-cg")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed start left its cgroup: %v", err)
		}
	}
	// A bind source that vanishes between the check and the mount fails
	// in the second stage, and the error comes back.
	src := filepath.Join(t.TempDir(), "gone")
	os.WriteFile(src, nil, 0o644)
	cfg := Config{ID: "bad-bind", ExecFile: exe, UID: 4321, GID: 4322, ChrootBase: base,
		Binds: []Bind{{src, "/gone", true}}}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	os.Remove(src)
	_, err := startChecked(cfg)
	if err == nil || !strings.Contains(err.Error(), "bind "+src) {
		t.Errorf("a bind source removed before the mount: %v", err)
	}
}

// startChecked starts cfg as Start does but without Check, to reach the
// second stage's own errors.
func startChecked(cfg Config) (*Process, error) {
	if err := prepareRoot(cfg.Root()); err != nil {
		return nil, err
	}
	sp := spec{Root: cfg.Root(), ExecName: cfg.ExecName(), ExecFile: cfg.ExecFile, UID: cfg.UID, GID: cfg.GID,
		Binds: cfg.Binds, NoFile: DefaultNoFile, Args: cfg.Args}
	return start(cfg, sp, nil, nil, io.Discard, io.Discard)
}

func matches(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}
