// Package nested runs an end-to-end scenario script where a KVM guest can
// really run: directly on this machine when its /dev/kvm is backed by
// hardware virtualization, otherwise inside the nested test host, a small
// Linux booted under QEMU's TCG emulator with an SVM CPU, whose kvm-amd
// offers a real /dev/kvm. See /work/shared/TESTHOST.md for the measurements
// behind this.
package nested

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/test/fixture"
)

// Job is one scenario run.
type Job struct {
	// Files are the scenario directory's contents (name -> content); the
	// script named Entry is run with sh. The directory is $SCENARIO_DIR.
	Files map[string][]byte
	Entry string
	// Tern is the tern binary to test.
	Tern string
	// Env adds variables to the script's environment.
	Env map[string]string
	// Live, when set, receives the output as it is produced.
	Live io.Writer
}

// Result is what a run produced.
type Result struct {
	Output string // the script's output (in the nested host: its whole console)
	RC     int    // the script's exit status
}

// Backend runs jobs somewhere with a usable /dev/kvm.
type Backend interface {
	// Describe says which backend this is and why it was chosen.
	Describe() string
	Run(ctx context.Context, job Job) (*Result, error)
}

// Kind names a backend.
type Kind string

const (
	KindDirect Kind = "direct"
	KindNested Kind = "nested"
)

// Probe is what the choice of backend depends on, read from the machine.
type Probe struct {
	KVMExists     bool
	KVMOpenErr    error    // nil when /dev/kvm opened read-write
	VendorModules []string // the module behind /dev/kvm: kvm_amd or kvm_intel
	PVMPresent    bool     // /dev/kvm is backed by kvm_pvm
	CPUVirtFlag   string   // "svm" or "vmx" when /proc/cpuinfo lists one
	Forced        Kind     // from $TERN_TEST_BACKEND
}

// Decide picks the backend for what p found, and says why. A direct run
// needs a /dev/kvm that opens and is backed by AMD-V or VT-x: the vendor
// module is loaded and the CPU shows svm or vmx. A /dev/kvm backed by
// kvm_pvm (this project's development machines) cannot run a stock kernel.
func Decide(p Probe) (Kind, string) {
	switch p.Forced {
	case KindDirect:
		return KindDirect, "forced by TERN_TEST_BACKEND=direct"
	case KindNested:
		return KindNested, "forced by TERN_TEST_BACKEND=nested"
	}
	switch {
	case !p.KVMExists:
		return KindNested, "/dev/kvm absent here"
	case p.KVMOpenErr != nil:
		return KindNested, fmt.Sprintf("/dev/kvm does not open here (%v)", p.KVMOpenErr)
	case len(p.VendorModules) == 0 && p.PVMPresent:
		return KindNested, "/dev/kvm here is backed by kvm_pvm, which cannot run a stock kernel"
	case len(p.VendorModules) == 0:
		return KindNested, "/dev/kvm here has no kvm_amd or kvm_intel module behind it"
	case p.CPUVirtFlag == "":
		return KindNested, fmt.Sprintf("%s is loaded but the CPU shows neither svm nor vmx", strings.Join(p.VendorModules, "+"))
	}
	return KindDirect, fmt.Sprintf("/dev/kvm is backed by %s (%s)", strings.Join(p.VendorModules, "+"), p.CPUVirtFlag)
}

// ProbeMachine reads the facts Decide needs from this machine.
func ProbeMachine() Probe {
	var p Probe
	if _, err := os.Stat("/dev/kvm"); err == nil {
		p.KVMExists = true
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err == nil {
			f.Close()
		}
		p.KVMOpenErr = err
	}
	// What backs the device is tern's own question too (tern check):
	// ask the same code.
	switch b := kvm.DetectBackend("/dev/kvm"); b.Kind {
	case kvm.BackendHardware:
		p.VendorModules = []string{b.Module}
	case kvm.BackendPVM:
		p.PVMPresent = true
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		p.CPUVirtFlag = cpuVirtFlag(string(b))
	}
	p.Forced = Kind(os.Getenv("TERN_TEST_BACKEND"))
	return p
}

// cpuVirtFlag returns "svm" or "vmx" when the first flags line has it.
func cpuVirtFlag(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		if !strings.HasPrefix(line, "flags") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if f == "svm" || f == "vmx" {
				return f
			}
		}
		return ""
	}
	return ""
}

// Choose returns the backend for this machine, for jobs that boot the
// fixture's kernel and initramfs.
func Choose(fx *fixture.Fixture) (Backend, error) {
	p := ProbeMachine()
	if p.Forced != "" && p.Forced != KindDirect && p.Forced != KindNested {
		return nil, fmt.Errorf("TERN_TEST_BACKEND=%q: want %q or %q", p.Forced, KindDirect, KindNested)
	}
	kind, why := Decide(p)
	if kind == KindDirect {
		return &Direct{fx: fx, reason: why}, nil
	}
	return NewHost(fx, why)
}
