package vmm

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"

	"github.com/ternvm/tern/internal/safefile"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/virtio/block"
	"golang.org/x/sys/unix"
)

// Streaming disks with a migration (migrate.SendOptions.WithDisks): the
// source implements migrate.DiskSource over its virtio-blk devices, the
// destination migrate.DiskDestination over local files the --disk
// overrides name.

// blockDevices are the VM's disks in device order: the order of
// orderedDisks, which is the order the hello announces them in.
func (v *VM) blockDevices() []*block.Device {
	var out []*block.Device
	for _, s := range v.plat.virtio {
		if b, ok := s.transport.Device().(*block.Device); ok {
			out = append(out, b)
		}
	}
	return out
}

var _ migrate.DiskSource = (*migrationSource)(nil)

// Disks are every disk, read-only ones included: the destination has
// none of this host's files, and a read-only disk must be there too.
func (s *migrationSource) Disks() ([]migrate.DiskInfo, error) {
	s.disks = s.v.blockDevices()
	var out []migrate.DiskInfo
	for _, b := range s.disks {
		out = append(out, migrate.DiskInfo{Name: b.Path(), Size: uint64(b.Size())})
	}
	return out, nil
}

func (s *migrationSource) StartDiskLog() ([][]migrate.Extent, error) {
	out := make([][]migrate.Extent, len(s.disks))
	for i, b := range s.disks {
		// The log first: a write from here on is in it, one before is
		// in the image's data.
		b.StartWriteLog()
		err := b.DataExtents(func(off, n int64) error {
			out[i] = append(out[i], migrate.Extent{Off: uint64(off), Len: uint64(n)})
			return nil
		})
		if err != nil {
			s.StopDiskLog()
			return nil, err
		}
	}
	return out, nil
}

func (s *migrationSource) ReadDisk(i int, p []byte, off int64) error {
	return s.disks[i].ReadAt(p, off)
}

func (s *migrationSource) TakeDiskDirty() ([][]migrate.Extent, error) {
	out := make([][]migrate.Extent, len(s.disks))
	for i, b := range s.disks {
		out[i] = chunkExtents(b.TakeWritten(), uint64(b.Size()))
	}
	return out, nil
}

func (s *migrationSource) StopDiskLog() error {
	for _, b := range s.disks {
		b.StopWriteLog()
	}
	return nil
}

// chunkExtents turns a write log bitmap into runs of chunks, the last cut
// at the disk's size.
func chunkExtents(log []uint64, size uint64) []migrate.Extent {
	var out []migrate.Extent
	for w, word := range log {
		for word != 0 {
			bit := uint64(w)*64 + uint64(bits.TrailingZeros64(word))
			word &= word - 1
			off := bit * block.LogChunk
			if off >= size {
				return out
			}
			n := min(uint64(block.LogChunk), size-off)
			if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == off {
				out[k].Len += n
				continue
			}
			out = append(out, migrate.Extent{Off: off, Len: n})
		}
	}
	return out
}

var _ migrate.DiskDestination = (*migrationDest)(nil)

// checkStreamedDisks checks that the disks a hello streams are the VM's,
// in device order. None streamed means shared storage.
func checkStreamedDisks(streamed []migrate.DiskInfo, disks []DiskConfig) error {
	if len(streamed) == 0 {
		return nil
	}
	ordered := orderedDisks(disks)
	if len(streamed) != len(ordered) {
		return fmt.Errorf("%w: %d disks streamed for a VM with %d", ErrBadSnapshot, len(streamed), len(ordered))
	}
	for i, d := range ordered {
		if streamed[i].Name != d.Path {
			return fmt.Errorf("%w: streamed disk %d is %s, the VM's is %s", ErrBadSnapshot, i, streamed[i].Name, d.Path)
		}
	}
	return nil
}

// diskCopy is one streamed disk's local file while the migration writes
// it.
type diskCopy struct {
	f       *os.File
	path    string
	created bool // by this migration: removed if it fails
}

// PrepareDisks opens (or creates, mode 0600) the local file the --disk
// override names for each streamed disk, locks it as a running VM locks
// its image, so that no image in use here is overwritten, and truncates
// it to the source's size: everything reads as zero until written.
func (d *migrationDest) PrepareDisks(disks []migrate.DiskInfo) error {
	seen := map[string]bool{}
	for _, di := range disks {
		if seen[di.Name] {
			return fmt.Errorf("%w: disk %s is streamed twice", ErrBadSnapshot, di.Name)
		}
		seen[di.Name] = true
		path, ok := d.opts.DiskPaths[di.Name]
		if !ok {
			return fmt.Errorf("%w: the source streams disk %s: name a local file for it with --disk %s=NEWPATH", ErrInvalidConfig, di.Name, di.Name)
		}
		c, err := openDiskCopy(path, int64(di.Size))
		if err != nil {
			return fmt.Errorf("disk %s: %w", di.Name, err)
		}
		d.copies = append(d.copies, c)
	}
	return nil
}

func openDiskCopy(path string, size int64) (*diskCopy, error) {
	c := &diskCopy{path: path}
	f, _, err := safefile.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600, safefile.Regular)
	if err == nil {
		c.created = true
	} else if errors.Is(err, fs.ErrExist) {
		f, _, err = safefile.Open(path, unix.O_RDWR|unix.O_NOFOLLOW, 0, safefile.Regular)
	}
	if err != nil {
		return nil, fmt.Errorf("streamed disk copy: %w", err)
	}
	c.f = f
	fail := func(err error) (*diskCopy, error) {
		c.discard()
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fail(&block.LockedError{Path: path})
		}
		return fail(fmt.Errorf("lock %s: %w", path, err))
	}
	// Emptied first: what the file held must not show through where
	// the source's disk has holes, which are never sent.
	if err := f.Truncate(0); err != nil {
		return fail(err)
	}
	if err := f.Truncate(size); err != nil {
		return fail(err)
	}
	return c, nil
}

// discard closes the file and removes it if this migration created it.
func (c *diskCopy) discard() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	if c.created {
		os.Remove(c.path)
		c.created = false
	}
}

func (d *migrationDest) WriteDisk(i int, p []byte, off int64) error {
	c := d.copies[i]
	if _, err := c.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("%s: %w", c.path, err)
	}
	// Start writing it back now, without waiting: the fsync before the
	// guest runs (inside its downtime) then waits only for what is still
	// in flight, not for the whole disk.
	_ = unix.SyncFileRange(int(c.f.Fd()), off, int64(len(p)), unix.SYNC_FILE_RANGE_WRITE)
	return nil
}

// ZeroDisk punches a hole, which reads as zeroes and costs no space;
// where the file system cannot, it writes zeroes.
func (d *migrationDest) ZeroDisk(i int, off, n int64) error {
	c := d.copies[i]
	err := unix.Fallocate(int(c.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%s: punch a hole: %w", c.path, err)
	}
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := c.f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("%s: %w", c.path, err)
		}
		off += k
		n -= k
	}
	return nil
}

// FinishDisks makes the copies durable and closes them, which lets go of
// their locks: Load opens them as the VM's disks and locks them again.
func (d *migrationDest) FinishDisks() error {
	for _, c := range d.copies {
		if err := c.f.Sync(); err != nil {
			return fmt.Errorf("%s: fsync: %w", c.path, err)
		}
		f := c.f
		c.f = nil
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s: %w", c.path, err)
		}
	}
	return nil
}

// discardDisks undoes PrepareDisks after a failed migration: the files it
// created are removed; files that existed keep what was written.
func (d *migrationDest) discardDisks() {
	for _, c := range d.copies {
		c.discard()
	}
	d.copies = nil
}
