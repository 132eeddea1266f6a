package boot

import "fmt"

// resetVectorCode stands in for firmware at F000:FFF0. A kernel that finds
// no other way to reboot (Linux on a hardware-reduced ACPI platform picks
// "EFI", then falls back to jumping to the BIOS) would otherwise execute
// whatever bytes lie there and spin. This code pulses the reset line through
// the i8042, which ends the VM as a reset, the same as the kernel's own
// keyboard-controller reboot:
//
//	mov  al, 0xfe   ; b0 fe
//	out  0x64, al   ; e6 64
//	hlt             ; f4
//	jmp  short hlt  ; eb fd
var resetVectorCode = []byte{0xb0, 0xfe, 0xe6, PortI8042Command, 0xf4, 0xeb, 0xfd}

// WriteResetVector writes the reset stub at ResetVectorAddr.
func WriteResetVector(mem GuestMemory) error {
	if _, err := mem.WriteAt(resetVectorCode, ResetVectorAddr); err != nil {
		return fmt.Errorf("write reset vector: %w", err)
	}
	return nil
}
