package kvm

import (
	"fmt"
	"os"
	"path/filepath"
)

// BackendKind says what implements a host's /dev/kvm.
type BackendKind int

const (
	BackendAbsent   BackendKind = iota // no KVM device
	BackendHardware                    // kvm_amd or kvm_intel: AMD-V or VT-x
	BackendPVM                         // kvm_pvm: page-table-based, runs only PVM-enlightened guests natively
	BackendUnknown                     // a device, but no module we recognise
)

// Backend is what DetectBackend found, with the evidence.
type Backend struct {
	Kind   BackendKind
	Module string // the module that provides /dev/kvm, if known
	Detail string
}

func (b Backend) String() string {
	switch b.Kind {
	case BackendHardware:
		return fmt.Sprintf("hardware virtualization (%s)", b.Module)
	case BackendPVM:
		return "PVM (kvm_pvm): a stock Linux guest cannot run natively"
	case BackendAbsent:
		return "absent: " + b.Detail
	}
	return "unknown: " + b.Detail
}

// Why says, for a backend that cannot run a stock guest, why not.
func (b Backend) Why() string {
	switch b.Kind {
	case BackendPVM:
		return "/dev/kvm is backed by kvm_pvm, which runs guest ring 0 in its instruction emulator and fails on instructions a stock kernel uses (XRSTOR, CMPXCHG16B, int3)"
	case BackendAbsent:
		return b.Detail
	case BackendUnknown:
		return "/dev/kvm is provided by no module tern recognises (" + b.Detail + ")"
	}
	return ""
}

// DetectBackend inspects the device node and /sys/module to tell what backs
// the KVM device at path.
func DetectBackend(path string) Backend {
	return detectBackend(path, "/sys/module")
}

func detectBackend(path, sysModule string) Backend {
	loaded := func(m string) bool {
		_, err := os.Stat(filepath.Join(sysModule, m))
		return err == nil
	}
	if _, err := os.Stat(path); err != nil {
		detail := fmt.Sprintf("%s does not exist", path)
		if !os.IsNotExist(err) {
			detail = fmt.Sprintf("%s: %v", path, err)
		}
		switch {
		case loaded("kvm_pvm") && !loaded("kvm_amd") && !loaded("kvm_intel"):
			detail += " (kvm_pvm is loaded but did not bind: this host is itself a PVM guest)"
		case !loaded("kvm"):
			detail += " (the kvm module is not loaded)"
		}
		return Backend{Kind: BackendAbsent, Detail: detail}
	}
	for _, m := range []string{"kvm_amd", "kvm_intel"} {
		if loaded(m) {
			return Backend{Kind: BackendHardware, Module: m}
		}
	}
	if loaded("kvm_pvm") {
		return Backend{Kind: BackendPVM, Module: "kvm_pvm"}
	}
	return Backend{Kind: BackendUnknown, Detail: "none of kvm_amd, kvm_intel, kvm_pvm is loaded"}
}
