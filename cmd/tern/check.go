package main

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/vmm"
	"github.com/urfave/cli/v2"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "report what this host's KVM offers and whether tern can run a stock guest here",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kvm", Value: vmm.DefaultKVMPath, Usage: "KVM device to inspect"},
			&cli.BoolFlag{Name: "cpuid", Usage: "also list every entry of KVM_GET_SUPPORTED_CPUID"},
		},
		Action: func(c *cli.Context) error {
			ok := check(c.App.Writer, c.String("kvm"), c.Bool("cpuid"))
			if !ok {
				return &exitError{code: 1, err: errors.New("tern cannot run a stock Linux guest on this host")}
			}
			return nil
		},
	}
}

// check prints a report and says whether a stock guest can run.
func check(w io.Writer, path string, listCPUID bool) bool {
	b := kvm.DetectBackend(path)
	fmt.Fprintf(w, "kvm device:   %s\n", path)
	fmt.Fprintf(w, "backend:      %s\n", b)
	sys, err := kvm.Open(path)
	if err != nil {
		fmt.Fprintf(w, "open:         FAILED: %v\n", err)
		fmt.Fprintf(w, "verdict:      tern cannot run here: %s\n", b.Why())
		return false
	}
	defer sys.Close()
	fmt.Fprintf(w, "open:         ok\n")
	ver, err := sys.APIVersion()
	if err != nil {
		fmt.Fprintf(w, "api version:  FAILED: %v\n", err)
		return false
	}
	fmt.Fprintf(w, "api version:  %d\n", ver)
	usable := ver == 12
	for _, c := range vmm.RequiredCaps() {
		n, err := sys.CheckExtension(c)
		state := "yes"
		if err != nil || n <= 0 {
			state, usable = "MISSING (required)", false
		}
		fmt.Fprintf(w, "  %-32s %s\n", c, state)
	}
	for _, c := range []kvm.Cap{kvm.CapXSave, kvm.CapXCRS, kvm.CapTSCControl, kvm.CapGetTSCKHz,
		kvm.CapManualDirtyLogProtect2, kvm.CapDirtyLogRing, kvm.CapNestedState, kvm.CapX2APICAPI} {
		n, err := sys.CheckExtension(c)
		state := "yes"
		if err != nil || n <= 0 {
			state = "no (optional)"
		}
		fmt.Fprintf(w, "  %-32s %s\n", c, state)
	}
	if n, err := sys.CheckExtension(kvm.CapMaxVCPUs); err == nil {
		fmt.Fprintf(w, "max vCPUs:    %d\n", n)
	}
	if ids, err := sys.SupportedCPUID(); err == nil {
		fmt.Fprintf(w, "CPUID leaves: %d supported\n", len(ids))
		if listCPUID {
			for _, e := range ids {
				fmt.Fprintf(w, "  %#010x.%-2d flags %d: eax %08x ebx %08x ecx %08x edx %08x\n",
					e.Function, e.Index, e.Flags, e.EAX, e.EBX, e.ECX, e.EDX)
			}
		}
	}
	if msrs, err := sys.MSRIndexList(); err == nil {
		fmt.Fprintf(w, "MSRs:         %d in KVM_GET_MSR_INDEX_LIST\n", len(msrs))
	}
	switch {
	case !usable:
		fmt.Fprintf(w, "verdict:      tern cannot run here: KVM lacks what tern needs\n")
		return false
	case b.Kind != kvm.BackendHardware:
		fmt.Fprintf(w, "verdict:      tern cannot run a stock Linux guest here: %s\n", b.Why())
		return false
	}
	fmt.Fprintf(w, "verdict:      tern can run a stock Linux guest here\n")
	return true
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print tern's version",
		Action: func(c *cli.Context) error {
			goVer := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVer = bi.GoVersion
			}
			fmt.Fprintf(c.App.Writer, "tern %s (%s)\n", version, goVer)
			return nil
		},
	}
}
