package main

import (
	"fmt"

	"github.com/ternvm/tern/internal/seccomp"
	"github.com/urfave/cli/v2"
)

// seccompFlags are the flags of every command that runs a guest: the
// filter is on unless they say otherwise.
func seccompFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "no-seccomp", Usage: "run without the seccomp filter that otherwise confines tern to the system calls running a guest needs"},
		&cli.BoolFlag{Name: "seccomp-audit", Usage: "for development: let system calls outside the seccomp filter through, and have the kernel log each (audit type=1326, in dmesg)"},
	}
}

// seccompHook reads those flags: what vmm calls just before the guest
// runs (nil for none).
func seccompHook(c *cli.Context) (func() error, error) {
	if c.Bool("no-seccomp") {
		if c.Bool("seccomp-audit") {
			return nil, fmt.Errorf("--no-seccomp and --seccomp-audit exclude each other")
		}
		logger.Warn("seccomp filter off (--no-seccomp): tern may make any system call")
		return nil, nil
	}
	mode := seccomp.Enforce
	if c.Bool("seccomp-audit") {
		mode = seccomp.Audit
	}
	return installSeccomp(mode), nil
}

// installSeccomp is the vmm.Config.BeforeRun hook that installs tern's
// filter in mode.
func installSeccomp(mode seccomp.Mode) func() error {
	install := seccomp.Prepare(mode)
	return func() error {
		if err := install(); err != nil {
			return fmt.Errorf("%w (--no-seccomp runs without it)", err)
		}
		// BeforeRun runs on the boot vCPU's thread on its way into
		// the guest: the line (tens of microseconds) is written beside.
		go logger.WithField("mode", mode.String()).Info("seccomp filter installed on every thread")
		return nil
	}
}
