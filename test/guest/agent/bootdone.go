package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ternvm/tern/boot"
)

// bootDoneTries bounds the retries of a faulting OUT (see bootDone).
const bootDoneTries = 20

// bootDone writes the boot timer's magic byte to its port, which the
// monitor logs as the boot time.
//
// In the nested test host an OUT that ioperm allowed now and then raises
// #GP all the same (seen once in about a hundred boots: the emulated CPU's
// I/O-bitmap check, since the kernel had granted the port and the next
// try goes through). The guest kernel has no /dev/port to write through
// instead, so the fault is caught and the write tried again; each retry
// is reported, so a port that never opens still fails loudly.
func bootDone(args []string) error {
	if len(args) != 0 {
		return errors.New("takes no arguments")
	}
	// The port must be opened to this process before a CPL 3 OUT is allowed.
	if err := unix.Ioperm(boot.PortBootTimer, 1, 1); err != nil {
		return fmt.Errorf("ioperm(%#x): %w", boot.PortBootTimer, err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	for try := 1; ; try++ {
		err := tryOutb(boot.PortBootTimer, boot.BootTimerMagic)
		if err == nil {
			return nil
		}
		if try == bootDoneTries {
			return fmt.Errorf("out to port %#x faulted %d times: %w", boot.PortBootTimer, try, err)
		}
		fmt.Fprintf(os.Stderr, "TERN-GUEST note=boot-done-out-faulted try=%d: %v\n", try, err)
		time.Sleep(10 * time.Millisecond)
	}
}

// tryOutb runs outb and turns a fault into an error; it needs
// debug.SetPanicOnFault(true) to be in force.
func tryOutb(port uint16, value uint8) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	outb(port, value)
	return nil
}
