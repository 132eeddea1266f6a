// Package acpi builds the ACPI tables of a tern microVM: RSDP, XSDT, FADT,
// MADT and DSDT, laid out contiguously in the legacy BIOS area where the
// kernel finds them (through boot_params.acpi_rsdp_addr, the PVH start
// info's rsdp_paddr, or by scanning 0xe0000-0xfffff).
//
// The platform is hardware-reduced ACPI (no PM1 blocks, no SCI, no GPEs, no
// FACS): reset goes through the FADT RESET_REG and S5 power-off through the
// FADT SLEEP_CONTROL_REG, both byte-wide I/O ports handled by the VMM. The
// DSDT describes the virtio-mmio devices (HID LNRO0005, which Linux's
// virtio_mmio driver matches) and, optionally, COM1.
package acpi
