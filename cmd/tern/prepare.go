package main

import (
	"strings"

	"github.com/ternvm/tern/vmm"
)

// prepareHost starts the KVM work of a command that boots or restores a
// guest (opening the device, creating the VM, reading its CPUID; for tern
// run also mapping and registering the guest's RAM and creating the
// interrupt controllers: about 1 ms here) while the command line is
// parsed and the files are checked; see vmm.PrepareHostFor. It reads args
// only as far as it must: the command's name after tern's own flags, its
// --kvm and, for run, its --memory. Anything it misreads costs nothing
// but the wasted work: New checks what it takes and does it again.
func prepareHost(args []string) {
	if p, ok := hostToPrepare(args); ok {
		vmm.PrepareHostFor(p.kvm, p.memory)
	}
}

// hostPreparation is what prepareHost prepares: the KVM device and, if
// not 0, that much guest RAM.
type hostPreparation struct {
	kvm    string
	memory uint64
}

// hostToPrepare is what a command line that boots or restores a guest
// will need, and whether it is one.
func hostToPrepare(args []string) (hostPreparation, bool) {
	var none hostPreparation
	if len(args) == 0 {
		return none, false
	}
	rest := args[1:]
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		switch rest[0] {
		case "--log-level", "-log-level":
			rest = rest[min(2, len(rest)):]
		default:
			if !strings.HasPrefix(strings.TrimLeft(rest[0], "-"), "log-level=") {
				return none, false // --help, --version or a mistake
			}
			rest = rest[1:]
		}
	}
	if len(rest) == 0 {
		return none, false
	}
	run := rest[0] == "run"
	switch {
	case run, rest[0] == "firecracker":
	case rest[0] == "snapshot" && len(rest) > 1 && rest[1] == "restore":
	default:
		return none, false
	}
	p := hostPreparation{kvm: vmm.DefaultKVMPath}
	memory, plainRAM := defaultMemory, run
	for i, a := range rest {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "kvm", "memory":
		case "huge-pages", "track-dirty-pages":
			plainRAM = false // RAM New would make otherwise
			continue
		default:
			continue
		}
		if !hasValue {
			if i+1 >= len(rest) {
				return none, false
			}
			value = rest[i+1]
		}
		if name == "kvm" {
			p.kvm = value
		} else {
			memory = value
		}
	}
	if plainRAM {
		if n, err := parseSize(memory); err == nil {
			p.memory = n
		}
	}
	return p, true
}
