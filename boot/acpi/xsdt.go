package acpi

import "encoding/binary"

// buildXSDT returns an XSDT listing the tables at addrs.
func buildXSDT(addrs []uint64) []byte {
	t := newTable(sigXSDT, headerSize+8*len(addrs), xsdtRevision)
	for i, a := range addrs {
		binary.LittleEndian.PutUint64(t[headerSize+8*i:], a)
	}
	sealTable(t)
	return t
}
