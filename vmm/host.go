package vmm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkHostMemory refuses a guest larger than the host's RAM: guest memory
// is mapped without reservation, so the mapping alone would not fail, the
// guest would instead be killed when it touches what is not there.
func checkHostMemory(size uint64) error {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return nil // cannot tell; let the mapping decide
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if total > 0 && size > total {
		return fmt.Errorf("%w: guest memory of %d MiB is more than this host's %d MiB of RAM", ErrInvalidConfig, size>>20, total>>20)
	}
	return nil
}
