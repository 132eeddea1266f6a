package boot

import (
	"fmt"
	"io"
)

const pageSize = 0x1000

// LoadInitrd copies an initrd of size bytes into guest memory, page-aligned
// and as high as possible: it ends at or below min(k.InitrdAddrMax+1,
// memEnd) and starts at or above k.End. It returns the load address.
func LoadInitrd(mem GuestMemory, initrd io.ReaderAt, size int64, k *Kernel, memEnd uint64) (uint64, error) {
	if size <= 0 {
		return 0, fmt.Errorf("initrd is empty (size %d)", size)
	}
	if k == nil {
		return 0, fmt.Errorf("load initrd: no kernel")
	}
	ceiling := memEnd
	if k.InitrdAddrMax < ceiling {
		ceiling = k.InitrdAddrMax + 1
	}
	if uint64(size) > ceiling {
		return 0, fmt.Errorf("initrd of %d bytes does not fit below %#x", size, ceiling)
	}
	addr := alignDown(ceiling-uint64(size), pageSize)
	if addr < k.End {
		return 0, fmt.Errorf("initrd of %d bytes does not fit between the kernel's end %#x and %#x", size, k.End, ceiling)
	}
	if err := copyToGuest(mem, addr, initrd, 0, size); err != nil {
		return 0, fmt.Errorf("load initrd: %w", err)
	}
	return addr, nil
}
