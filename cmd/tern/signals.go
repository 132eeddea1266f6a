package main

import (
	"os"
	"os/signal"
	"syscall"
)

// stopSignals stop the VM cleanly; tern then exits with 128+N. SIGHUP is
// among them: a closed terminal or a supervisor's hang-up stops the VM
// as SIGTERM does rather than killing tern mid-write.
func stopSignals() []os.Signal {
	return []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}
}

// ignoreSIGPIPE makes a write to a closed pipe (the console's stdout, a
// FIFO whose reader left) fail with EPIPE instead of killing tern before
// it can stop the VM and clean up; the console buffer counts what it
// could not write.
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }
