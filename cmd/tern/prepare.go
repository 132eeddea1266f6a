package main

import (
	"strings"

	"github.com/ternvm/tern/vmm"
)

// prepareHost starts the KVM work of a command that boots or restores a
// guest (opening the device, creating the VM, reading its CPUID: about 0.7
// ms here) while the command line is parsed and the files are checked; see
// vmm.PrepareHost. It reads args only as far as it must: the command's
// name after tern's own flags, and its --kvm. Anything it misreads costs
// nothing but the wasted work: New does it again.
func prepareHost(args []string) {
	if path, ok := hostToPrepare(args); ok {
		vmm.PrepareHost(path)
	}
}

// hostToPrepare is the KVM device a command line that boots or restores
// a guest will open, and whether it is one.
func hostToPrepare(args []string) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	rest := args[1:]
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		switch rest[0] {
		case "--log-level", "-log-level":
			rest = rest[min(2, len(rest)):]
		default:
			if !strings.HasPrefix(strings.TrimLeft(rest[0], "-"), "log-level=") {
				return "", false // --help, --version or a mistake
			}
			rest = rest[1:]
		}
	}
	if len(rest) == 0 {
		return "", false
	}
	switch {
	case rest[0] == "run", rest[0] == "firecracker":
	case rest[0] == "snapshot" && len(rest) > 1 && rest[1] == "restore":
	default:
		return "", false
	}
	path := vmm.DefaultKVMPath
	for i, a := range rest {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "kvm" {
			continue
		}
		if !hasValue {
			if i+1 >= len(rest) {
				return "", false
			}
			value = rest[i+1]
		}
		path = value
	}
	return path, true
}
