package boot

// E820 address range types (boot_e820_entry.type; the same numbers as
// XEN_HVM_MEMMAP_TYPE_* and the ACPI address range types).
const (
	E820RAM      = 1
	E820Reserved = 2
	E820ACPI     = 3
	E820NVS      = 4
	E820Unusable = 5
)

// E820Entry is one range of the guest's memory map.
type E820Entry struct {
	Addr, Size uint64
	Type       uint32
}

// E820Map returns the memory map of a guest with memSize bytes of RAM laid
// out as layout.go describes: low RAM up to the EBDA, RAM from 1 MiB to the
// MMIO hole, and whatever did not fit below the hole again from 4 GiB. The
// legacy BIOS area and the hole are left out, which tells the kernel they
// are not RAM.
func E820Map(memSize uint64) []E820Entry {
	var m []E820Entry
	if memSize == 0 {
		return m
	}
	m = append(m, E820Entry{Addr: 0, Size: min(memSize, EBDAStart), Type: E820RAM})
	if low := min(memSize, MMIOHoleStart); low > HighMemStart {
		m = append(m, E820Entry{Addr: HighMemStart, Size: low - HighMemStart, Type: E820RAM})
	}
	if memSize > MMIOHoleStart {
		m = append(m, E820Entry{Addr: MMIOHoleEnd, Size: memSize - MMIOHoleStart, Type: E820RAM})
	}
	return m
}

// LowMemEnd is the end of the RAM below the MMIO hole for a guest of
// memSize bytes: the memEnd that LoadKernel and LoadInitrd take.
func LowMemEnd(memSize uint64) uint64 { return min(memSize, MMIOHoleStart) }
