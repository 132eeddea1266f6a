package devices

import "time"

// bootTimerMagic mirrors boot.BootTimerMagic.
const bootTimerMagic = 123

// BootTimer is a debug port the guest writes to when it has booted (the
// Firecracker convention: a byte 123 at port 0x440). Each such write
// reports the time since start; anything else is ignored. It has no
// state, so it needs no lock; report may run on several vCPUs at once.
type BootTimer struct {
	start  time.Time
	report func(time.Duration)
}

// NewBootTimer returns a timer counting from start.
func NewBootTimer(start time.Time, report func(time.Duration)) *BootTimer {
	return &BootTimer{start: start, report: report}
}

// Read returns 0.
func (t *BootTimer) Read(offset uint64, data []byte) {
	clear(data)
}

// Write reports the elapsed time for a 1-byte write of the magic value at
// offset 0.
func (t *BootTimer) Write(offset uint64, data []byte) {
	if offset == 0 && len(data) == 1 && data[0] == bootTimerMagic && t.report != nil {
		t.report(time.Since(t.start))
	}
}
