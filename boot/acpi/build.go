package acpi

import (
	"fmt"

	"github.com/ternvm/tern/boot"
)

// tableAlign keeps every table on a 16-byte boundary; the RSDP must be on
// one for OSes that scan for it.
const tableAlign = 16

// Build lays out all tables contiguously starting at base (RSDP first, then
// XSDT, FADT, MADT and DSDT), with every pointer and checksum filled in, and
// returns the bytes to write at base. base is boot.ACPITablesAddr; it must
// be 16-byte aligned and the tables must end at or below
// boot.ACPITablesEnd.
func Build(cfg Config, base uint64) ([]byte, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if base%tableAlign != 0 {
		return nil, fmt.Errorf("acpi: base %#x is not %d-byte aligned", base, tableAlign)
	}
	dsdt, err := buildDSDT(cfg)
	if err != nil {
		return nil, err
	}
	madt := buildMADT(cfg.CPUs)

	xsdtOff := alignUp(rsdpSize)
	xsdtLen := headerSize + 8*2
	fadtOff := alignUp(xsdtOff + xsdtLen)
	madtOff := alignUp(fadtOff + fadtSize)
	dsdtOff := alignUp(madtOff + len(madt))
	total := dsdtOff + len(dsdt)
	if base > boot.ACPITablesEnd || uint64(total) > boot.ACPITablesEnd-base {
		return nil, fmt.Errorf("acpi: %d bytes of tables at %#x pass the end of the ACPI area at %#x",
			total, base, boot.ACPITablesEnd)
	}

	at := func(off int) uint64 { return base + uint64(off) }
	out := make([]byte, total)
	copy(out, buildRSDP(at(xsdtOff)))
	copy(out[xsdtOff:], buildXSDT([]uint64{at(fadtOff), at(madtOff)}))
	copy(out[fadtOff:], buildFADT(at(dsdtOff)))
	copy(out[madtOff:], madt)
	copy(out[dsdtOff:], dsdt)
	return out, nil
}

func alignUp(n int) int { return (n + tableAlign - 1) &^ (tableAlign - 1) }
