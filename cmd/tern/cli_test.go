package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputIsOneClearLine runs the CLI on inputs a user gets wrong and
// checks each fails with status 1 and one line that names the problem,
// before any VM is built.
func TestBadInputIsOneClearLine(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notKernel, []byte(strings.Repeat("not a kernel\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "secret")
	if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "vmlinux-missing")
	kernel := fakeBzImage(t)
	noSnap := t.TempDir()
	badTemplate := filepath.Join(dir, "tmpl.json")
	if err := os.WriteFile(badTemplate, []byte(`{"msr_modifiers": [{"addr": "0x10a", "bitmap": "0b12"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noSnap, "vmstate"), []byte(strings.Repeat("not a kernel\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"run", "--kernal", notKernel}, "flag provided but not defined: -kernal"},
		{"no kernel flag", []string{"run"}, `Required flag "kernel" not set`},
		{"missing kernel", []string{"run", "--kernel", missing}, "kernel: open " + missing + ": no such file or directory"},
		{"directory as kernel", []string{"run", "--kernel", dir}, dir + " is a directory, not a regular file"},
		{"neither ELF nor bzImage", []string{"run", "--kernel", notKernel}, "neither an ELF vmlinux nor a bzImage"},
		{"bad memory size", []string{"run", "--kernel", notKernel, "--memory", "lots"}, `--memory: "lots" is not a size like 256M or 2G`},
		{"memory too small", []string{"run", "--kernel", kernel, "--memory", "1M"}, "below the minimum"},
		{"memory not page aligned", []string{"run", "--kernel", kernel, "--memory", "20001K"}, "not a multiple of 4096"},
		{"too many vCPUs", []string{"run", "--kernel", kernel, "--cpus", "33"}, "33 vCPUs requested; tern supports 1 to 32"},
		{"zero vCPUs", []string{"run", "--kernel", kernel, "--cpus", "0"}, "--cpus: 0 is not a positive number"},
		{"missing initrd", []string{"run", "--kernel", kernel, "--initrd", missing}, "initrd: open " + missing},
		{"console in a missing dir", []string{"run", "--kernel", kernel, "--console", filepath.Join(missing, "out")}, "--console:"},
		{"bad log level", []string{"--log-level", "loud", "version"}, `--log-level: "loud" is not one of`},
		{"missing disk file", []string{"run", "--kernel", kernel, "--disk", "path=" + missing}, "disk 0: stat " + missing + ": no such file or directory"},
		{"disk without path", []string{"run", "--kernel", kernel, "--disk", "ro=on"}, "--disk ro=on: path= is required"},
		{"disk unknown key", []string{"run", "--kernel", kernel, "--disk", "path=x,size=1G"}, `--disk: unknown key "size"`},
		{"disk bad bandwidth", []string{"run", "--kernel", kernel, "--disk", "path=x,bw=fast"}, `--disk: bw: "fast" is not a size like 256M or 2G`},
		{"disk burst without a rate", []string{"run", "--kernel", kernel, "--disk", "path=x,iops_burst=10"}, "--disk: iops_burst needs iops"},
		{"net bad packet rate", []string{"run", "--kernel", kernel, "--net", "tap=tern0,tx_pps=lots"}, `--net: tx_pps="lots" is not a positive number (per second)`},
		{"bad rng bandwidth", []string{"run", "--kernel", kernel, "--rng-bw", "0"}, `--rng-bw: "0" is zero`},
		{"disk bad ro", []string{"run", "--kernel", kernel, "--disk", "path=x,ro=maybe"}, `--disk: ro="maybe" is not on/off`},
		{"duplicate disk id", []string{"run", "--kernel", kernel, "--disk", "path=" + kernel + ",id=a", "--disk", "path=" + notKernel + ",id=a"}, `disk 1: id "a" is already used by disk 0`},
		{"two root disks", []string{"run", "--kernel", kernel, "--disk", "path=" + kernel + ",root=on", "--disk", "path=" + notKernel + ",root=on"}, "2 disks are marked root"},
		{"malformed MAC", []string{"run", "--kernel", kernel, "--net", "tap=tern0,mac=02:00:zz:00:00:01"}, `--net: mac="02:00:zz:00:00:01" is not a MAC address`},
		{"multicast MAC", []string{"run", "--kernel", kernel, "--net", "tap=tern0,mac=01:00:00:00:00:01"}, "multicast"},
		{"TAP name too long", []string{"run", "--kernel", kernel, "--net", "tap=a-very-long-tap-name0"}, "net 0: TAP"},
		{"duplicate TAP", []string{"run", "--kernel", kernel, "--net", "tap=tern0", "--net", "tap=tern0"}, "TAP tern0 is already used by net 0"},
		{"vsock CID below 3", []string{"run", "--kernel", kernel, "--vsock", "cid=2,socket=/tmp/v.sock"}, "guest CID 2 is below 3"},
		{"vsock without socket", []string{"run", "--kernel", kernel, "--vsock", "cid=3"}, "socket= is required"},
		{"vsock bad cid", []string{"run", "--kernel", kernel, "--vsock", "cid=three,socket=/tmp/v.sock"}, `--vsock: cid="three" is not a number`},
		{"balloon bad size", []string{"run", "--kernel", kernel, "--balloon", "size=lots"}, `--balloon: size: "lots" is not a size`},
		{"balloon bigger than the guest", []string{"run", "--kernel", kernel, "--memory", "128M", "--balloon", "size=256M"}, "balloon target of 256 MiB is more than the guest's 128 MiB"},
		{"balloon bad stats", []string{"run", "--kernel", kernel, "--balloon", "size=16M,stats=often"}, `--balloon: stats="often" is not a positive duration`},
		{"unknown cpu template", []string{"run", "--kernel", kernel, "--cpu-template", "T3"}, `--cpu-template: no static CPU template "T3"`},
		{"missing cpu template file", []string{"run", "--kernel", kernel, "--cpu-template", missing + ".json"}, "--cpu-template: open " + missing + ".json: no such file"},
		{"bad cpu template file", []string{"run", "--kernel", kernel, "--cpu-template", badTemplate}, "--cpu-template " + badTemplate + `: bad custom CPU template: msr_modifiers[0] (MSR 0x10a): bitmap "0b12"`},
		{"stray argument", []string{"run", "--kernel", kernel, "extra"}, `unexpected argument "extra"`},
		{"restore without a snapshot", []string{"snapshot", "restore", "--dir", missing}, "no snapshot in " + missing + ": vmstate: open " + missing + "/vmstate: no such file"},
		{"restore of a file that is no snapshot", []string{"snapshot", "restore", "--dir", noSnap}, `not a tern snapshot (magic "not a ke")`},
		{"restore override without =", []string{"snapshot", "restore", "--dir", dir, "--disk", "a.img"}, `--disk "a.img": want OLD=NEW`},
		{"restore override twice", []string{"snapshot", "restore", "--dir", dir, "--tap", "a=b", "--tap", "a=c"}, "--tap: a is given twice"},
		{"snapshot of no running tern", []string{"snapshot", "create", "--api-socket", filepath.Join(dir, "api.sock"), "--dir", dir}, "pause: API at " + filepath.Join(dir, "api.sock")},
		{"snapshot without a directory", []string{"snapshot", "create", "--api-socket", "x"}, `Required flag "dir" not set`},
		{"merge of missing snapshots", []string{"snapshot", "merge", "--base", missing, "--diff", missing}, "no such file or directory"},
		{"pause of no running tern", []string{"pause", "--api-socket", filepath.Join(dir, "api.sock")}, "API at "},
		{"migrate to plain tcp without --insecure", []string{"migrate", "send", "--api-socket", "x", "--to", "tcp:10.0.0.9:7000"}, "tcp:10.0.0.9:7000 needs --tls-cert, --tls-key and --tls-ca (mutual TLS), or --insecure for plain TCP"},
		{"migrate to a bad address", []string{"migrate", "send", "--api-socket", "x", "--to", "10.0.0.9:7000"}, "--to:"},
		{"migrate with half the TLS files", []string{"migrate", "send", "--api-socket", "x", "--to", "tcp:10.0.0.9:7000", "--tls-cert", "c.pem"}, "--tls-key"},
		{"migrate with a bad on-timeout", []string{"migrate", "send", "--api-socket", "x", "--to", "unix:/tmp/m.sock", "--on-timeout", "shrug"}, `--on-timeout: "shrug" is not cancel or force`},
		{"migrate with a bad bandwidth", []string{"migrate", "send", "--api-socket", "x", "--to", "unix:/tmp/m.sock", "--bandwidth", "fast"}, "--bandwidth:"},
		{"migrate with a bad output", []string{"migrate", "send", "--api-socket", "x", "--to", "unix:/tmp/m.sock", "--output", "yaml"}, `--output: "yaml" is not text or json`},
		{"migrate from no running tern", []string{"migrate", "send", "--api-socket", filepath.Join(dir, "api.sock"), "--to", "unix:/tmp/m.sock"}, "API at " + filepath.Join(dir, "api.sock")},
		{"receive on plain tcp without --insecure", []string{"migrate", "receive", "--listen", "tcp:127.0.0.1:7000"}, "needs --tls-cert, --tls-key and --tls-ca"},
		{"receive on a bad address", []string{"migrate", "receive", "--listen", "udp:1"}, "--listen:"},
		{"receive override without =", []string{"migrate", "receive", "--listen", "unix:" + filepath.Join(dir, "m.sock"), "--disk", "a.img"}, `--disk "a.img": want OLD=NEW`},
		{"migration status of no running tern", []string{"migrate", "status", "--api-socket", filepath.Join(dir, "api.sock")}, "API at "},
	}
	if os.Geteuid() != 0 {
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"unreadable kernel", []string{"run", "--kernel", unreadable}, "permission denied"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runMain(append([]string{"tern"}, c.args...), &out, &errOut)
			if code != 1 {
				t.Errorf("exit status %d, want 1 (stderr %q)", code, errOut.String())
			}
			msg := errOut.String()
			if !strings.Contains(msg, c.want) {
				t.Errorf("stderr %q does not contain %q", msg, c.want)
			}
			if lines := strings.Count(strings.TrimRight(msg, "\n"), "\n") + 1; !strings.HasPrefix(msg, "tern: ") || lines != 1 {
				t.Errorf("stderr is not one 'tern: ...' line: %q", msg)
			}
		})
	}
}

// TestMissingKVMDevice points tern at a KVM device that does not exist, as on
// a host without KVM, with a kernel that passes the file checks.
func TestMissingKVMDevice(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runMain([]string{"tern", "check", "--kvm", filepath.Join(t.TempDir(), "kvm")}, &out, &errOut)
	if code != 1 {
		t.Fatalf("tern check on a missing device: exit %d, want 1", code)
	}
	if !strings.Contains(out.String(), "does not exist") || !strings.Contains(out.String(), "verdict:      tern cannot run here") {
		t.Errorf("check report does not say the device is missing:\n%s", out.String())
	}
}

func TestRunWithoutKVM(t *testing.T) {
	kernel := fakeBzImage(t)
	dev := filepath.Join(t.TempDir(), "kvm")
	var out, errOut bytes.Buffer
	code := runMain([]string{"tern", "run", "--kernel", kernel, "--kvm", dev}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, errOut.String())
	}
	if want := dev + " does not exist: this host offers no KVM"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q does not contain %q", errOut.String(), want)
	}
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runMain([]string{"tern", "version"}, &out, &errOut); code != 0 {
		t.Fatalf("tern version: exit %d, stderr %q", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "tern ") {
		t.Errorf("tern version printed %q", out.String())
	}
}

// fakeBzImage writes just enough of a bzImage for the format check: the
// boot flag and the "HdrS" magic of the setup header.
func fakeBzImage(t *testing.T) string {
	img := make([]byte, 0x400)
	img[0x1fe], img[0x1ff] = 0x55, 0xaa
	copy(img[0x202:], "HdrS")
	kernel := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(kernel, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return kernel
}
