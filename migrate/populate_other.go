//go:build !linux

package migrate

// populate does nothing where the kernel offers no bulk fault-in.
func populate([]byte) {}
