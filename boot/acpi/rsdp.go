package acpi

import "encoding/binary"

// The Root System Description Pointer (ACPI 6.4 section 5.2.5.3).
const (
	rsdpSize = 36

	rsdpChecksum         = 8
	rsdpOEMID            = 9
	rsdpRevision         = 15
	rsdpRSDTAddress      = 16
	rsdpLength           = 20
	rsdpXSDTAddress      = 24
	rsdpExtendedChecksum = 32
	// rsdpV1Size is the ACPI 1.0 part the first checksum covers.
	rsdpV1Size = 20
)

// buildRSDP returns an RSDP pointing at the XSDT only: there is no RSDT,
// which ACPI 2.0 and later OSes never read when an XSDT is present.
func buildRSDP(xsdt uint64) []byte {
	r := make([]byte, rsdpSize)
	copy(r, sigRSDP)
	copy(r[rsdpOEMID:rsdpOEMID+6], OEMID)
	r[rsdpRevision] = rsdpRev
	binary.LittleEndian.PutUint32(r[rsdpLength:], rsdpSize)
	binary.LittleEndian.PutUint64(r[rsdpXSDTAddress:], xsdt)
	r[rsdpChecksum] = checksum(r[:rsdpV1Size])
	r[rsdpExtendedChecksum] = checksum(r)
	return r
}
