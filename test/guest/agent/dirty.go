package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// dirtyCmd: dirty MIB MIB_PER_S. A guest that dirties its memory faster
// than a migration's link carries it, for auto-converge: it rewrites one
// byte of every page of a MIB MiB buffer, pass after pass, at MIB_PER_S
// MiB of pages a second, printing "dirty-passes=N" every few passes, until
// it is killed.
//
// It is busy all the time, spinning between pages rather than sleeping:
// only a guest that needs its CPU is slowed by a throttle (a sleeping one
// would do the same work in what time it is given). And it never catches
// up on time it did not run: a throttled vCPU dirties pages in proportion
// to the time it runs, as a real busy guest would.
func dirtyCmd(args []string) error {
	if len(args) != 2 {
		return errors.New("want MIB MIB_PER_S")
	}
	mib, err1 := strconv.Atoi(args[0])
	rate, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil || mib < 1 || rate < 1 {
		return fmt.Errorf("MIB %q and MIB_PER_S %q: want positive numbers", args[0], args[1])
	}
	// The lowest priority, so that the guest's other work (what a test
	// checks) runs whenever it wants. Linux gives each thread its own:
	// the one that spins is this one, kept.
	runtime.LockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, 19); err != nil {
		return fmt.Errorf("lowering its priority: %w", err)
	}
	buf := make([]byte, mib<<20)
	interval := time.Second * pageSize / time.Duration(rate<<20)
	fmt.Printf("dirty-mib=%d\ndirty-mib-per-s=%d\n", mib, rate)
	dirty(buf, interval, 5, -1, time.Now, io.Writer(stdoutLines{}))
	return nil
}

// pageSize is the guest's page size, the unit a dirty log counts.
const pageSize = 4096

// stdoutLines writes to stdout unbuffered, so each line shows at once.
type stdoutLines struct{}

func (stdoutLines) Write(p []byte) (int, error) { return fmt.Print(string(p)) }

// dirty writes a non-zero byte (a zero page would go as a flag, not as
// data) into each page of buf in turn, a page every interval of the time
// it runs, and prints "dirty-passes=N" on out after every report passes.
// It returns after passes passes (never, when passes is negative).
func dirty(buf []byte, interval time.Duration, report, passes int, now func() time.Time, out io.Writer) {
	next := now()
	for pass := 1; passes < 0 || pass <= passes; pass++ {
		for off := 0; off < len(buf); off += pageSize {
			buf[off] = byte(pass%255 + 1)
			next = next.Add(interval)
			t := now()
			if next.Before(t) {
				// Not run for a while (throttled, preempted): go on
				// from now rather than make the lost pages up.
				next = t
			}
			for now().Before(next) {
			}
		}
		if pass%report == 0 {
			fmt.Fprintf(out, "dirty-passes=%d\n", pass)
		}
	}
}
