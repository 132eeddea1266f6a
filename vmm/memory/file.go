package memory

import (
	"fmt"
	"os"

	"github.com/ternvm/tern/internal/safefile"
	"golang.org/x/sys/unix"
)

// FromFile maps guest RAM of size bytes from the file at path, laid out as
// Layout(size) regions back to back in the file. The mapping is
// MAP_PRIVATE: nothing is read until the guest touches a page, and the
// guest's writes stay in this process, never reaching the file. The file
// must be exactly size bytes long.
func FromFile(path string, size uint64) (*Memory, error) {
	if size == 0 || size%PageSize != 0 {
		return nil, fmt.Errorf("guest memory size %d is not a non-zero multiple of %d", size, PageSize)
	}
	// Opened without blocking and checked on the descriptor: a FIFO in
	// place of the memory file is refused, not waited on.
	f, st, err := safefile.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("open guest memory file: %w", err)
	}
	// The mappings keep the file referenced; the descriptor is not needed
	// once they exist.
	defer f.Close()
	if uint64(st.Size()) != size {
		return nil, fmt.Errorf("guest memory file %s is %d bytes, the guest has %d", path, st.Size(), size)
	}
	m := &Memory{size: size, file: st}
	var off int64
	for _, l := range Layout(size) {
		b, err := unix.Mmap(int(f.Fd()), off, int(l[1]), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_NORESERVE)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("map %d bytes of guest memory file %s at offset %d: %w", l[1], path, off, err)
		}
		m.addRegion(l[0], b)
		off += int64(l[1])
	}
	return m, nil
}

// BackedBy reports whether guest RAM is mapped from the file at path, so a
// caller never rewrites the file under its own mapping.
func (m *Memory) BackedBy(path string) bool {
	if m.file == nil {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && os.SameFile(st, m.file)
}
