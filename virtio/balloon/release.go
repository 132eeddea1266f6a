package balloon

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ReleaseWithMadvise returns a release function for New that drops the
// host backing of guest RAM with madvise(MADV_DONTNEED): the host frees
// the pages at once and the guest's next access to them faults in zeroed
// memory. mem is the VMM's guest memory (any virtio.Memory will do).
//
// Ranges must be 4 KiB aligned and lie inside one piece of RAM; anything
// else is an error and nothing is released. With RAM backed by huge pages
// the kernel accepts only huge-page aligned ranges, so 4 KiB balloon pages
// fail there and stay backed.
func ReleaseWithMadvise(mem interface {
	Slice(gpa, length uint64) ([]byte, error)
}) func(gpa, length uint64) error {
	return func(gpa, length uint64) error {
		if gpa%PageSize != 0 || length%PageSize != 0 {
			return fmt.Errorf("release guest range [%#x, +%#x): not aligned to %d-byte pages", gpa, length, PageSize)
		}
		if length == 0 {
			return nil
		}
		if gpa+length < gpa {
			return fmt.Errorf("release guest range [%#x, +%#x): wraps past the end of the address space", gpa, length)
		}
		b, err := mem.Slice(gpa, length)
		if err != nil {
			return fmt.Errorf("release guest range [%#x, +%#x): %w", gpa, length, err)
		}
		if uint64(len(b)) != length {
			return fmt.Errorf("release guest range [%#x, +%#x): guest memory returned %d bytes", gpa, length, len(b))
		}
		if err := unix.Madvise(b, unix.MADV_DONTNEED); err != nil {
			return fmt.Errorf("release guest range [%#x, +%#x): madvise(MADV_DONTNEED): %w", gpa, length, err)
		}
		return nil
	}
}
