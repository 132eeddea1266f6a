package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
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
// ioperm grants a port to the calling thread only, so the goroutine stays
// on its thread from the grant to the OUT: without that, the Go runtime
// now and then ran the OUT on another thread, where it raised #GP (seen
// in the nested test host as an OUT faulting once in about a hundred
// boots, and once twenty times in a row; it was taken for the emulator's
// fault until the thread was noticed). A fault is still caught and the
// write tried again, each retry reported, so a port that never opens
// fails loudly rather than crashing the agent.
func bootDone(args []string) error {
	if len(args) != 0 {
		return errors.New("takes no arguments")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The port must be opened to this thread before a CPL 3 OUT is allowed.
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
