package main

import (
	"testing"

	"github.com/ternvm/tern/vmm"
)

func TestHostToPrepareReadsTheCommandItsKVMAndRAM(t *testing.T) {
	def := vmm.DefaultKVMPath
	cases := []struct {
		args []string
		path string // "" for none
		mem  uint64 // guest RAM to prepare (tern run only)
	}{
		{[]string{"tern", "run", "--kernel", "k"}, def, 256 << 20},
		{[]string{"tern", "--log-level", "debug", "run", "--kernel", "k"}, def, 256 << 20},
		{[]string{"tern", "--log-level=warn", "run"}, def, 256 << 20},
		{[]string{"tern", "run", "--kvm", "/dev/other"}, "/dev/other", 256 << 20},
		{[]string{"tern", "run", "--kvm=/dev/other", "--memory", "1G"}, "/dev/other", 1 << 30},
		{[]string{"tern", "run", "-kvm", "/dev/other", "--memory=128M", "--pvh"}, "/dev/other", 128 << 20},
		{[]string{"tern", "run", "--memory", "64M", "--memory", "96M"}, def, 96 << 20}, // the last one counts
		{[]string{"tern", "run", "--memory", "lots"}, def, 0},                          // New reports it
		{[]string{"tern", "run", "--memory", "1G", "--huge-pages"}, def, 0},
		{[]string{"tern", "run", "--track-dirty-pages", "--memory", "1G"}, def, 0},
		{[]string{"tern", "run", "--memory"}, "", 0}, // a usage error: nothing to prepare
		{[]string{"tern", "snapshot", "restore", "--dir", "d", "--kvm", "/dev/k2"}, "/dev/k2", 0},
		{[]string{"tern", "snapshot", "restore", "--dir", "d", "--memory", "1G"}, def, 0},
		{[]string{"tern", "firecracker", "--api-sock", "s"}, def, 0},
		{[]string{"tern", "run", "--kvm"}, "", 0}, // a usage error: nothing to prepare
		{[]string{"tern", "snapshot", "create", "--dir", "d"}, "", 0},
		{[]string{"tern", "migrate", "receive"}, "", 0},
		{[]string{"tern", "pause"}, "", 0},
		{[]string{"tern", "--help", "run"}, "", 0},
		{[]string{"tern", "--version"}, "", 0},
		{[]string{"tern"}, "", 0},
		{nil, "", 0},
		{[]string{"tern", "--log-level"}, "", 0},
		{[]string{"tern", "run", "--", "--kvm", "x", "--memory", "1G"}, def, 256 << 20},
	}
	for _, c := range cases {
		p, ok := hostToPrepare(c.args)
		if (c.path == "") == ok || p.kvm != c.path || p.memory != c.mem {
			t.Errorf("hostToPrepare(%q) = %+v, %v; want %q and %d bytes of RAM", c.args, p, ok, c.path, c.mem)
		}
	}
}
