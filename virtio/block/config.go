package block

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/ternvm/tern/internal/safefile"
	"github.com/ternvm/tern/virtio/ratelimit"
)

// Config describes one disk.
type Config struct {
	// Path names the raw image: a regular file or a block device.
	Path string
	// File, if set, is the image already opened by the caller, used
	// instead of opening Path: a caller with privileges tern lacks opens
	// the image and keeps them. It must be a regular file or a block
	// device, opened for reading and writing (for reading when ReadOnly),
	// and it is locked as an opened Path is. The device works on a
	// duplicate of the descriptor: the caller still owns File and may
	// close it once New returned; Close closes the duplicate. The lock
	// belongs to the open file both descriptors share, so it lasts until
	// both are closed; the file offset, also shared, is not kept. Path,
	// if set, only names the disk (in errors, and in snapshots, where a
	// restore confirms or replaces it); when empty File's name stands in
	// for it. Never serialized.
	File *os.File `json:"-"`
	// ReadOnly opens the image read-only and offers VIRTIO_BLK_F_RO; the
	// guest's writes, discards and write-zeroes then fail.
	ReadOnly bool
	// ID is the serial the guest reads with GET_ID: at most IDLen bytes
	// of printable ASCII.
	ID string
	// RateLimit, if set, limits the disk's bandwidth (data bytes of
	// each request) and operations (requests); Device.RateLimiter
	// changes it at run time.
	RateLimit *ratelimit.Config `json:",omitempty"`
}

// ErrBadConfig is wrapped by every error New returns for a Config or an
// image that cannot make a disk.
var ErrBadConfig = errors.New("invalid virtio-blk configuration")

// Validate checks the configuration without touching the image.
func (c Config) Validate() error {
	if c.Path == "" && c.File == nil {
		return fmt.Errorf("%w: no image path or file", ErrBadConfig)
	}
	if len(c.ID) > IDLen {
		return fmt.Errorf("%w: serial %q is %d bytes, more than %d", ErrBadConfig, c.ID, len(c.ID), IDLen)
	}
	for i := 0; i < len(c.ID); i++ {
		if b := c.ID[i]; b < 0x20 || b > 0x7e {
			return fmt.Errorf("%w: serial %q has byte %#x at %d, not printable ASCII", ErrBadConfig, c.ID, b, i)
		}
	}
	if c.RateLimit != nil {
		if err := c.RateLimit.Validate(); err != nil {
			return fmt.Errorf("%w: rate limiter: %w", ErrBadConfig, err)
		}
	}
	return nil
}

// openImage opens the image named by cfg and returns it with its capacity
// in sectors.
func openImage(cfg Config) (*os.File, uint64, error) {
	if cfg.File != nil {
		return adoptImage(cfg)
	}
	flags := os.O_RDWR
	if cfg.ReadOnly {
		flags = os.O_RDONLY
	}
	// Opened without blocking, so a FIFO in place of the image is refused
	// by imageCapacity rather than waited on.
	f, _, err := safefile.Open(cfg.Path, flags, 0, safefile.Regular|safefile.BlockDevice)
	if errors.Is(err, safefile.ErrNotRegular) {
		return nil, 0, fmt.Errorf("%w: disk image %w", ErrBadConfig, err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: open disk image %q: %w", ErrBadConfig, cfg.Path, err)
	}
	capacity, err := imageCapacity(f, cfg.Path)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, capacity, nil
}

func imageCapacity(f *os.File, path string) (uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("%w: stat disk image %q: %w", ErrBadConfig, path, err)
	}
	mode := fi.Mode()
	isBlock := mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0
	if !mode.IsRegular() && !isBlock {
		return 0, fmt.Errorf("%w: disk image %q is a %v, not a regular file or block device", ErrBadConfig, path, mode.Type())
	}
	// A block device's stat size is zero; seeking to its end gives the
	// size for both kinds.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("%w: size of disk image %q: %w", ErrBadConfig, path, err)
	}
	if size%SectorSize != 0 {
		return 0, fmt.Errorf("%w: disk image %q is %d bytes, not a multiple of the %d-byte sector", ErrBadConfig, path, size, SectorSize)
	}
	return uint64(size) / SectorSize, nil
}

// isUnsupported reports whether fallocate refused the operation itself
// rather than failing at it: the file system or device cannot do it.
func isUnsupported(err error) bool {
	return errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL)
}
