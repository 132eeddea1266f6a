package acpi

import "encoding/binary"

// The Generic Address Structure (ACPI 6.4 section 5.2.3.2).
const (
	gasSize = 12

	addressSpaceSystemIO = 1
	accessSizeByte       = 1
)

// putIOPort8 writes at b a GAS describing one byte-wide register at port
// in SystemIO space, accessed with byte accesses.
func putIOPort8(b []byte, port uint16) {
	b[0] = addressSpaceSystemIO
	b[1] = 8 // register bit width
	b[2] = 0 // register bit offset
	b[3] = accessSizeByte
	binary.LittleEndian.PutUint64(b[4:gasSize], uint64(port))
}
