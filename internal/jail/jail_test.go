package jail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "vm-1", "551e7604-e35c-42b3-b825-416853441234", strings.Repeat("x", 64)} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q): %v, want ok", id, err)
		}
	}
	for id, want := range map[string]string{
		"":                      "--id is empty",
		strings.Repeat("x", 65): "65 characters long; the most is 64",
		"vm_1":                  `'_' is not allowed`,
		"../etc":                `'.' is not allowed`,
		"a/b":                   `'/' is not allowed`,
		"vm 1":                  `' ' is not allowed`,
		"vmé":                   `'é' is not allowed`,
	} {
		err := CheckID(id)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckID(%q) = %v, want an error containing %q", id, err, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	if n, err := ParseID("uid", "123"); err != nil || n != 123 {
		t.Errorf("ParseID(123) = %d, %v", n, err)
	}
	for _, s := range []string{"tern", "-1", "", "4294967295", "1e3"} {
		if _, err := ParseID("uid", s); err == nil || !strings.Contains(err.Error(), "--uid") {
			t.Errorf("ParseID(%q) = %v, want an error naming --uid", s, err)
		}
	}

	cs, err := ParseCgroup("cpu.max=50000 100000")
	if err != nil || cs != (CgroupSetting{"cpu.max", "50000 100000"}) {
		t.Errorf("ParseCgroup(cpu.max=...) = %+v, %v", cs, err)
	}
	if cs, err := ParseCgroup("cpuset.cpus=0,2=x"); err != nil || cs.Value != "0,2=x" {
		t.Errorf("ParseCgroup splits at the first '=' only: %+v, %v", cs, err)
	}
	for s, want := range map[string]string{
		"memory.max":            "want FILE=VALUE",
		"memory=1G":             "not a cgroup file name",
		"../memory.max=1":       "not a cgroup file name",
		"memory.max=":           "empty or spans lines",
		"memory.max=1\nmax":     "empty or spans lines",
		"a/memory.max=1":        "not a cgroup file name",
		"=1":                    "not a cgroup file name",
		".max=1":                "not a cgroup file name",
		"memory.=1":             "not a cgroup file name",
		"memory.max=1\x00extra": "empty or spans lines",
	} {
		if _, err := ParseCgroup(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCgroup(%q) = %v, want an error containing %q", s, err, want)
		}
	}

	var l Limits
	if err := ParseLimit(&l, "fsize=1000"); err != nil || l.FSize == nil || *l.FSize != 1000 {
		t.Fatalf("ParseLimit(fsize=1000): %v, %+v", err, l)
	}
	if err := ParseLimit(&l, "no-file=64"); err != nil || l.NoFile == nil || *l.NoFile != 64 {
		t.Fatalf("ParseLimit(no-file=64): %v, %+v", err, l)
	}
	for s, want := range map[string]string{
		"fsize=5":  "fsize is given twice",
		"nofile=5": `unknown resource "nofile" (fsize or no-file)`,
		"cpu":      "want RESOURCE=VALUE",
		"fsize":    "want RESOURCE=VALUE",
	} {
		if err := ParseLimit(&l, s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLimit(%q) = %v, want an error containing %q", s, err, want)
		}
	}
	var fresh Limits
	for s, want := range map[string]string{
		"no-file=many": `no-file="many" is not a number`,
		"fsize=-1":     `fsize="-1" is not a number`,
		"no-file=2":    "leaves no room for stdin",
	} {
		if err := ParseLimit(&fresh, s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLimit(%q) = %v, want an error containing %q", s, err, want)
		}
	}

	for s, want := range map[string]Bind{
		"/images/vmlinux":                   {"/images/vmlinux", "/vmlinux", true},
		"/images/rootfs.ext4:/disks/root":   {"/images/rootfs.ext4", "/disks/root", true},
		"/images/x:/y:z":                    {"/images/x", "/y:z", true},
		"/var/lib/tern/initrd.cpio:/initrd": {"/var/lib/tern/initrd.cpio", "/initrd", true},
	} {
		if b, err := ParseBind(s, true); err != nil || b != want {
			t.Errorf("ParseBind(%q) = %+v, %v; want %+v", s, b, err, want)
		}
	}
	if _, err := ParseBind(":/x", false); err == nil {
		t.Error("ParseBind(:/x) accepted an empty source")
	}
}

// TestLayout checks where a jail's files go, as Firecracker's jailer lays
// them out: BASE/<exec file name>/<id>/root, the PID file in the root, the
// cgroup under the exec file's name unless a parent is given.
func TestLayout(t *testing.T) {
	c := Config{ID: "vm-7", ExecFile: "/usr/local/bin/tern", Cgroup: []CgroupSetting{{"memory.max", "1G"}}}
	for _, g := range []struct{ what, got, want string }{
		{"Dir", c.Dir(), "/srv/jailer/tern/vm-7"},
		{"Root", c.Root(), "/srv/jailer/tern/vm-7/root"},
		{"PIDFile", c.PIDFile(), "/srv/jailer/tern/vm-7/root/tern.pid"},
		{"CgroupPath", c.CgroupPath(), "tern/vm-7"},
	} {
		if g.got != g.want {
			t.Errorf("%s = %q, want %q", g.what, g.got, g.want)
		}
	}
	c.ChrootBase, c.ParentCgroup = "/var/jails", "vms/batch"
	if got, want := c.Root(), "/var/jails/tern/vm-7/root"; got != want {
		t.Errorf("Root with --chroot-base-dir = %q, want %q", got, want)
	}
	if got, want := c.CgroupPath(), "vms/batch/vm-7"; got != want {
		t.Errorf("CgroupPath with --parent-cgroup = %q, want %q", got, want)
	}
	c.Cgroup, c.ParentCgroup = nil, ""
	if got := c.CgroupPath(); got != "" {
		t.Errorf("CgroupPath with no cgroup asked for = %q, want none", got)
	}
}

// TestCheckRefusesBadConfigs runs Check on configs a user gets wrong; each
// must fail naming the problem.
func TestCheckRefusesBadConfigs(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tern")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExe := filepath.Join(dir, "data")
	if err := os.WriteFile(notExe, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := Config{ID: "vm1", ExecFile: exe, UID: 1000, GID: 1000}
	if err := ok.Check(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"bad id", func(c *Config) { c.ID = "vm.1" }, `--id "vm.1": '.' is not allowed`},
		{"no exec file", func(c *Config) { c.ExecFile = "" }, "--exec-file is required"},
		{"missing exec file", func(c *Config) { c.ExecFile = filepath.Join(dir, "nope") }, "--exec-file: stat " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"exec file a directory", func(c *Config) { c.ExecFile = dir }, "is not a regular file"},
		{"exec file not executable", func(c *Config) { c.ExecFile = notExe }, "is not executable"},
		{"relative chroot base", func(c *Config) { c.ChrootBase = "jails" }, `--chroot-base-dir "jails" is not an absolute path`},
		{"parent cgroup escaping", func(c *Config) { c.ParentCgroup = "../x" }, "--parent-cgroup"},
		{"absolute parent cgroup", func(c *Config) { c.ParentCgroup = "/x" }, "--parent-cgroup"},
		{"cgroup twice", func(c *Config) { c.Cgroup = []CgroupSetting{{"memory.max", "1"}, {"memory.max", "2"}} }, "--cgroup memory.max is given twice"},
		{"missing netns", func(c *Config) { c.NetNS = filepath.Join(dir, "ns") }, "--netns: open " + filepath.Join(dir, "ns")},
		{"netns not a namespace", func(c *Config) { c.NetNS = notExe }, "is not a namespace file"},
		{"netns of another kind", func(c *Config) { c.NetNS = "/proc/self/ns/mnt" }, "not a network namespace"},
		{"bind of a missing file", func(c *Config) { c.Binds = []Bind{{filepath.Join(dir, "vmlinux"), "/vmlinux", true}} }, "no such file"},
		{"bind of a relative path", func(c *Config) { c.Binds = []Bind{{"vmlinux", "/vmlinux", true}} }, "not an absolute path"},
		{"bind to a relative dest", func(c *Config) { c.Binds = []Bind{{notExe, "data", true}} }, "not a clean absolute path"},
		{"bind over /dev", func(c *Config) { c.Binds = []Bind{{notExe, "/dev/kvm", true}} }, "/dev/kvm is taken in the jail"},
		{"bind over the exec file", func(c *Config) { c.Binds = []Bind{{notExe, "/tern", true}} }, "/tern is taken"},
		{"two binds at one place", func(c *Config) { c.Binds = []Bind{{notExe, "/d", true}, {exe, "/d", true}} }, "/d is taken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Check()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCgroup2Mount(t *testing.T) {
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	unified := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
`
	spaced := `41 31 0:38 / /mnt/my\040cgroups rw - cgroup2 none rw
`
	for in, want := range map[string]string{hybrid: "/sys/fs/cgroup/unified", unified: "/sys/fs/cgroup", spaced: "/mnt/my cgroups"} {
		got, err := cgroup2Mount(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("cgroup2Mount = %q, %v; want %q", got, err, want)
		}
	}
	v1only := "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	if _, err := cgroup2Mount(strings.NewReader(v1only)); err == nil || !strings.Contains(err.Error(), "cgroup v2 only") {
		t.Errorf("cgroup2Mount with only cgroup v1 = %v, want an error saying v2 only", err)
	}
}
