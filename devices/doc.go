// Package devices holds the emulated platform devices of a tern microVM and
// the buses that route guest port I/O and MMIO exits to them: a 16550A UART,
// the i8042 keyboard controller (reset line, Ctrl+Alt+Del), the CMOS real-time clock, the
// ACPI sleep/reset registers of the hardware-reduced FADT and the boot
// timer port.
//
// Each device is a plain state machine in the style of rust-vmm's
// vm-superio: the VMM calls Read and Write with an offset from the device's
// base, and the device reports interrupts through a Trigger. Devices start
// no goroutines and own no file descriptors. Several vCPU goroutines may
// call one device at the same time, so every device with state guards it
// with a mutex; callbacks (output writers, interrupt triggers, reset and
// power-off hooks) run after that mutex is released.
package devices
