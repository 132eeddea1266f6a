package main

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ternvm/tern/boot"
)

// bootDone writes the boot timer's magic byte to its port, which the
// monitor logs as the boot time.
func bootDone(args []string) error {
	if len(args) != 0 {
		return errors.New("takes no arguments")
	}
	// The port must be opened to this process before a CPL 3 OUT is allowed.
	if err := unix.Ioperm(boot.PortBootTimer, 1, 1); err != nil {
		return fmt.Errorf("ioperm(%#x): %w", boot.PortBootTimer, err)
	}
	outb(boot.PortBootTimer, boot.BootTimerMagic)
	return nil
}
