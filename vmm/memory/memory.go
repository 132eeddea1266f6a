// Package memory owns guest RAM: anonymous host mappings laid out around the
// 32-bit MMIO hole, with every access bounds-checked against them. Guest
// physical addresses are the offsets of its io.ReaderAt and io.WriterAt, so
// loaders and devices can use it without knowing how it is backed, and no
// access can reach outside guest RAM.
package memory

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/ternvm/tern/boot"
	"golang.org/x/sys/unix"
)

// ErrOutOfRange reports an access that is not wholly inside one RAM region.
var ErrOutOfRange = errors.New("guest memory access outside RAM")

// PageSize is the granularity of guest memory as KVM sees it.
const PageSize = 4096

// Region is one contiguous range of guest RAM backed by one host mapping.
type Region struct {
	GPA  uint64 // guest physical address of the first byte
	Size uint64
	// FirstPage numbers the region's first page when all regions' pages
	// are counted in order, as the memory file and dirty bitmaps do.
	FirstPage uint64
	mem       []byte
}

// HostAddr is the host virtual address of the region's first byte, as KVM's
// userspace_addr wants it.
func (r *Region) HostAddr() uint64 { return hostAddr(r.mem) }

// Bytes is the region's backing store. Callers that keep it must not use it
// after Close.
func (r *Region) Bytes() []byte { return r.mem }

// Options tune how guest RAM is backed.
type Options struct {
	// HugePages backs RAM with hugetlbfs pages (MAP_HUGETLB); the host must
	// have enough of them reserved (vm.nr_hugepages).
	HugePages bool
}

// Memory is the guest's RAM.
type Memory struct {
	regions []Region
	size    uint64
	file    os.FileInfo // the file RAM is mapped from (FromFile), or nil
	dirty   atomic.Pointer[hostDirty]
}

// Layout returns the RAM regions (address, size) of a guest with size bytes
// of memory: below the MMIO hole, then from 4 GiB for what does not fit.
func Layout(size uint64) [][2]uint64 {
	low := min(size, boot.MMIOHoleStart)
	out := [][2]uint64{{0, low}}
	if size > low {
		out = append(out, [2]uint64{boot.MMIOHoleEnd, size - low})
	}
	return out
}

// New maps size bytes of guest RAM. size must be a non-zero multiple of the
// page size (of 2 MiB with huge pages).
func New(size uint64, opts Options) (*Memory, error) {
	align := uint64(PageSize)
	if opts.HugePages {
		align = 2 << 20
	}
	if size == 0 || size%align != 0 {
		return nil, fmt.Errorf("guest memory size %d is not a non-zero multiple of %d", size, align)
	}
	if size > 1<<46 {
		return nil, fmt.Errorf("guest memory size %d is larger than 64 TiB", size)
	}
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE
	if opts.HugePages {
		flags |= unix.MAP_HUGETLB
	}
	m := &Memory{size: size}
	for _, l := range Layout(size) {
		b, err := unix.Mmap(-1, 0, int(l[1]), unix.PROT_READ|unix.PROT_WRITE, flags)
		if err != nil {
			m.Close()
			if opts.HugePages {
				return nil, fmt.Errorf("map %d bytes of guest RAM with huge pages (are enough reserved in /proc/sys/vm/nr_hugepages?): %w", l[1], err)
			}
			return nil, fmt.Errorf("map %d bytes of guest RAM: %w", l[1], err)
		}
		m.addRegion(l[0], b)
	}
	return m, nil
}

// addRegion appends the mapping b as the RAM at gpa.
func (m *Memory) addRegion(gpa uint64, b []byte) {
	var first uint64
	if n := len(m.regions); n > 0 {
		last := m.regions[n-1]
		first = last.FirstPage + last.Size/PageSize
	}
	m.regions = append(m.regions, Region{GPA: gpa, Size: uint64(len(b)), FirstPage: first, mem: b})
}

// Size is the amount of guest RAM in bytes.
func (m *Memory) Size() uint64 { return m.size }

// Regions lists the RAM regions in ascending guest address order.
func (m *Memory) Regions() []Region { return m.regions }

// LowEnd is the end of the RAM region that starts at address 0.
func (m *Memory) LowEnd() uint64 { return m.regions[0].Size }

// Slice returns the host bytes backing [gpa, gpa+length). The range must lie
// within one region.
func (m *Memory) Slice(gpa, length uint64) ([]byte, error) {
	for i := range m.regions {
		r := &m.regions[i]
		if gpa >= r.GPA && gpa-r.GPA <= r.Size && length <= r.Size-(gpa-r.GPA) {
			off := gpa - r.GPA
			m.markHost(i, gpa, length)
			return r.mem[off : off+length : off+length], nil
		}
	}
	return nil, fmt.Errorf("%w: [%#x, +%#x)", ErrOutOfRange, gpa, length)
}

// ReadAt copies guest memory at guest physical address off into p.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative address %d", ErrOutOfRange, off)
	}
	b, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(p, b), nil
}

// WriteAt copies p into guest memory at guest physical address off.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative address %d", ErrOutOfRange, off)
	}
	b, err := m.Slice(uint64(off), uint64(len(p)))
	if err != nil {
		return 0, err
	}
	return copy(b, p), nil
}

// Close unmaps guest RAM. The Memory must not be used afterwards.
func (m *Memory) Close() error {
	var errs []error
	for _, r := range m.regions {
		if err := unix.Munmap(r.mem); err != nil {
			errs = append(errs, fmt.Errorf("unmap guest RAM at %#x: %w", r.GPA, err))
		}
	}
	m.regions = nil
	return errors.Join(errs...)
}
