// Package boot loads a Linux kernel into guest memory and builds the
// structures the kernel reads at entry: the zero page and setup header, the
// e820 map, the command line, the initrd, the PVH start info, the early GDT
// and identity page tables, and the per-vCPU CPUID. It knows nothing of KVM:
// callers hand it guest memory as an io.ReaderAt/io.WriterAt addressed by
// guest physical address and turn the CPU state it returns into ioctls.
package boot

// The guest physical memory map. Everything that must sit at a fixed guest
// address is named here, so loaders, table builders and the VMM agree.
const (
	// Low memory below the EBDA holds the boot structures.
	GDTAddr        = 0x500
	IDTAddr        = 0x520
	PVHStartInfo   = 0x6000 // struct hvm_start_info
	PVHMemmapAddr  = 0x6100 // its hvm_memmap_table_entry array
	ZeroPageAddr   = 0x7000 // struct boot_params
	PML4Addr       = 0x9000
	PDPTAddr       = 0xa000
	PDAddr         = 0xb000
	CmdlineAddr    = 0x20000
	CmdlineMaxSize = 0x10000 // including the terminating NUL
	BootStackAddr  = 0x8ff0  // initial RSP for the 64-bit entry

	// EBDAStart is where usable low RAM ends; the MP table lives here.
	EBDAStart   = 0x9fc00
	MPTableAddr = EBDAStart
	// The legacy BIOS area: not RAM in the e820 map. The RSDP must sit in
	// 0xe0000-0xfffff for kernels that scan for it; the other ACPI tables
	// follow it.
	ACPITablesAddr = 0xe0000
	ACPITablesEnd  = ResetVectorAddr
	// ResetVectorAddr is where a PC's firmware entry (F000:FFF0) lands in
	// real mode; Linux jumps there for a "BIOS" reboot. See resetvector.go.
	ResetVectorAddr = 0xffff0
	// HighMemStart is the first byte of RAM above the legacy hole; a
	// bzImage's protected-mode kernel is loaded here.
	HighMemStart = 0x100000

	// The 32-bit MMIO hole: RAM stops at MMIOHoleStart and resumes at
	// 4 GiB for guests larger than that.
	MMIOHoleStart  = 0xc0000000
	MMIOHoleEnd    = 0x100000000
	VirtioMMIOBase = 0xd0000000 // first virtio-mmio window
	VirtioMMIOSize = 0x1000     // each device's window
	IOAPICAddr     = 0xfec00000
	LAPICAddr      = 0xfee00000
	// Addresses KVM needs for its own structures on Intel hosts
	// (KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_TSS_ADDR): one page and three
	// pages just below the top of the hole, never RAM.
	IdentityMapAddr = 0xfeffc000
	TSSAddr         = 0xfeffd000

	// MaxVCPUs bounds what the MP table (in the 1 KiB EBDA) and MADT hold.
	MaxVCPUs = 32
)

// Fixed I/O ports of the legacy and platform devices.
const (
	PortI8042Data    = 0x60
	PortI8042Command = 0x64
	PortRTC          = 0x70 // index at 0x70, data at 0x71
	PortCOM1         = 0x3f8
	PortBootTimer    = 0x440 // a byte write of BootTimerMagic marks "booted"
	PortACPISleepCtl = 0x600 // FADT SLEEP_CONTROL_REG
	PortACPISleepSts = 0x601 // FADT SLEEP_STATUS_REG
	PortACPIReset    = 0x602 // FADT RESET_REG
	ACPIResetValue   = 0x01
	BootTimerMagic   = 123
)

// Interrupt lines (IOAPIC pins / GSIs) of the legacy devices.
const (
	IRQKeyboard = 1 // the i8042's keyboard
	IRQCOM1     = 4
	// FirstVirtioIRQ is the first GSI handed to virtio-mmio devices.
	FirstVirtioIRQ = 5
)
