package block

import "sync/atomic"

// Counters count a disk's completed requests, as Firecracker's block
// metrics do: reads and writes that succeeded with their data bytes,
// flushes, and requests that failed (malformed, out of range, refused or
// failed by the host).
type Counters struct {
	ReadCount  uint64
	ReadBytes  uint64
	WriteCount uint64
	WriteBytes uint64
	FlushCount uint64
	Failed     uint64
}

type counters struct {
	reads, readBytes, writes, writeBytes, flushes, failed atomic.Uint64
}

// Counters returns the disk's counts since it was created.
func (d *Device) Counters() Counters {
	c := &d.counters
	return Counters{
		ReadCount: c.reads.Load(), ReadBytes: c.readBytes.Load(),
		WriteCount: c.writes.Load(), WriteBytes: c.writeBytes.Load(),
		FlushCount: c.flushes.Load(), Failed: c.failed.Load(),
	}
}
