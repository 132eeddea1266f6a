package main

import (
	"testing"

	"github.com/ternvm/tern/vmm"
)

func TestHostToPrepareReadsTheCommandAndItsKVM(t *testing.T) {
	def := vmm.DefaultKVMPath
	cases := []struct {
		args []string
		path string // "" for none
	}{
		{[]string{"tern", "run", "--kernel", "k"}, def},
		{[]string{"tern", "--log-level", "debug", "run", "--kernel", "k"}, def},
		{[]string{"tern", "--log-level=warn", "run"}, def},
		{[]string{"tern", "run", "--kvm", "/dev/other"}, "/dev/other"},
		{[]string{"tern", "run", "--kvm=/dev/other", "--memory", "1G"}, "/dev/other"},
		{[]string{"tern", "run", "-kvm", "/dev/other"}, "/dev/other"},
		{[]string{"tern", "snapshot", "restore", "--dir", "d", "--kvm", "/dev/k2"}, "/dev/k2"},
		{[]string{"tern", "firecracker", "--api-sock", "s"}, def},
		{[]string{"tern", "run", "--kvm"}, ""}, // a usage error: nothing to prepare
		{[]string{"tern", "snapshot", "create", "--dir", "d"}, ""},
		{[]string{"tern", "migrate", "receive"}, ""},
		{[]string{"tern", "pause"}, ""},
		{[]string{"tern", "--help", "run"}, ""},
		{[]string{"tern", "--version"}, ""},
		{[]string{"tern"}, ""},
		{nil, ""},
		{[]string{"tern", "--log-level"}, ""},
		{[]string{"tern", "run", "--", "--kvm", "x"}, def},
	}
	for _, c := range cases {
		path, ok := hostToPrepare(c.args)
		if (c.path == "") == ok || path != c.path {
			t.Errorf("hostToPrepare(%q) = %q, %v; want %q", c.args, path, ok, c.path)
		}
	}
}
