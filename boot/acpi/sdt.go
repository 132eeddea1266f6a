package acpi

import "encoding/binary"

// The system description table header (ACPI 6.4 section 5.2.6).
const (
	headerSize = 36

	hdrSignature       = 0
	hdrLength          = 4
	hdrRevision        = 8
	hdrChecksum        = 9
	hdrOEMID           = 10
	hdrOEMTableID      = 16
	hdrOEMRevision     = 24
	hdrCreatorID       = 28
	hdrCreatorRevision = 32
)

// newTable returns a zeroed table of size bytes with its header filled in,
// except for the checksum, which sealTable sets once the body is written.
func newTable(sig string, size int, revision byte) []byte {
	t := make([]byte, size)
	copy(t[hdrSignature:], sig)
	binary.LittleEndian.PutUint32(t[hdrLength:], uint32(size))
	t[hdrRevision] = revision
	copy(t[hdrOEMID:hdrOEMID+6], OEMID)
	// The OEM table id names the table, so a dump tells them apart.
	copy(t[hdrOEMTableID:hdrOEMTableID+8], CreatorID+sig)
	binary.LittleEndian.PutUint32(t[hdrOEMRevision:], oemRevision)
	copy(t[hdrCreatorID:hdrCreatorID+4], CreatorID)
	binary.LittleEndian.PutUint32(t[hdrCreatorRevision:], creatorRevision)
	return t
}

// sealTable sets the header checksum so the whole table sums to zero.
func sealTable(t []byte) {
	t[hdrChecksum] = 0
	t[hdrChecksum] = checksum(t)
}

// checksum returns the byte that makes b sum to zero modulo 256 when
// added to it.
func checksum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}
	return -sum
}
