package mptable

import (
	"encoding/binary"
	"testing"

	"github.com/ternvm/tern/boot"
)

// Offsets and values come from the Intel MultiProcessor Specification 1.4,
// chapter 4, written out here independently of the package's constants.

var le = binary.LittleEndian

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func mustBuild(t *testing.T, cpus int) []byte {
	t.Helper()
	b, err := Build(cpus, boot.MPTableAddr)
	if err != nil {
		t.Fatalf("Build(%d): %v", cpus, err)
	}
	return b
}

func TestFloatingPointer(t *testing.T) {
	b := mustBuild(t, 2)
	fp := b[:16]
	if string(fp[0:4]) != "_MP_" {
		t.Errorf("signature %q", fp[0:4])
	}
	if got := le.Uint32(fp[4:]); got != boot.MPTableAddr+16 {
		t.Errorf("physical address pointer %#x, want %#x (right after the 16-byte structure)", got, boot.MPTableAddr+16)
	}
	if fp[8] != 1 {
		t.Errorf("length %d paragraphs, want 1", fp[8])
	}
	if fp[9] != 4 {
		t.Errorf("spec revision %d, want 4 (1.4)", fp[9])
	}
	if s := sum(fp); s != 0 {
		t.Errorf("floating pointer sums to %#x", s)
	}
	for i := 11; i < 16; i++ {
		if fp[i] != 0 {
			t.Errorf("feature byte %d = %#x, want 0 (config table present, virtual wire mode)", i-10, fp[i])
		}
	}
	if boot.MPTableAddr%16 != 0 {
		t.Errorf("MPTableAddr %#x is not on a 16-byte boundary the kernel scans", boot.MPTableAddr)
	}
}

func TestConfigTable(t *testing.T) {
	for _, cpus := range []int{1, 2, 8, boot.MaxVCPUs} {
		b := mustBuild(t, cpus)
		ct := b[le.Uint32(b[4:])-boot.MPTableAddr:]
		// Header 44, processors 20 each, then 8-byte bus, I/O APIC,
		// 16 ISA interrupts, 2 local interrupts.
		wantLen := 44 + 20*cpus + 8*(1+1+16+2)
		if len(ct) != wantLen || len(b) != 16+wantLen {
			t.Fatalf("%d CPUs: config table %d bytes (blob %d), want %d", cpus, len(ct), len(b), wantLen)
		}
		if string(ct[0:4]) != "PCMP" {
			t.Errorf("signature %q", ct[0:4])
		}
		if got := le.Uint16(ct[4:]); int(got) != wantLen {
			t.Errorf("base table length %d, want %d", got, wantLen)
		}
		if ct[6] != 4 {
			t.Errorf("spec revision %d, want 4", ct[6])
		}
		if s := sum(ct[:wantLen]); s != 0 {
			t.Errorf("%d CPUs: config table sums to %#x", cpus, s)
		}
		if string(ct[8:16]) != "TERNVM  " || string(ct[16:28]) != "TERN MICROVM" {
			t.Errorf("OEM id %q, product id %q", ct[8:16], ct[16:28])
		}
		if le.Uint32(ct[28:]) != 0 || le.Uint16(ct[32:]) != 0 {
			t.Error("OEM table pointer or size set; there is no OEM table")
		}
		if got := le.Uint16(ct[34:]); int(got) != cpus+1+1+16+2 {
			t.Errorf("entry count %d, want %d", got, cpus+20)
		}
		if got := le.Uint32(ct[36:]); got != boot.LAPICAddr {
			t.Errorf("local APIC address %#x", got)
		}
		if le.Uint16(ct[40:]) != 0 || ct[42] != 0 {
			t.Error("extended table length or checksum set; there is no extended table")
		}
		checkEntries(t, cpus, ct[44:])
	}
}

func checkEntries(t *testing.T, cpus int, e []byte) {
	t.Helper()
	ioapicID := byte(cpus)
	for i := 0; i < cpus; i++ {
		p := e[:20]
		e = e[20:]
		if p[0] != 0 || p[1] != byte(i) {
			t.Errorf("processor %d: type %d, APIC id %d", i, p[0], p[1])
		}
		if p[2] != 0x14 {
			t.Errorf("processor %d: local APIC version %#x, want 0x14", i, p[2])
		}
		wantFlags := byte(1) // EN
		if i == 0 {
			wantFlags |= 2 // BP
		}
		if p[3] != wantFlags {
			t.Errorf("processor %d: flags %#x, want %#x", i, p[3], wantFlags)
		}
		if sig := le.Uint32(p[4:]); sig>>8&0xf != 6 {
			t.Errorf("processor %d: CPU signature %#x is not family 6", i, sig)
		}
		if f := le.Uint32(p[8:]); f&(1<<9) == 0 || f&1 == 0 {
			t.Errorf("processor %d: feature flags %#x lack FPU and APIC", i, f)
		}
	}

	if string(e[0:8]) != "\x01\x00ISA   " {
		t.Errorf("bus entry % x, want type 1, id 0, \"ISA   \"", e[0:8])
	}
	e = e[8:]

	if e[0] != 2 || e[1] != ioapicID || e[2] != 0x11 || e[3] != 1 || le.Uint32(e[4:]) != boot.IOAPICAddr {
		t.Errorf("I/O APIC entry % x, want type 2, id %d, version 0x11, enabled, at %#x",
			e[:8], ioapicID, boot.IOAPICAddr)
	}
	e = e[8:]

	for irq := 0; irq < 16; irq++ {
		want := []byte{3, 0, 0, 0, 0, byte(irq), ioapicID, byte(irq)} // INT, conforming, ISA bus
		if string(e[:8]) != string(want) {
			t.Errorf("I/O interrupt for IRQ %d = % x, want % x", irq, e[:8], want)
		}
		e = e[8:]
	}

	for lint, intType := range []byte{3, 1} { // LINT0 ExtINT, LINT1 NMI
		want := []byte{4, intType, 0, 0, 0, 0, 0xff, byte(lint)}
		if string(e[:8]) != string(want) {
			t.Errorf("local interrupt LINT%d = % x, want % x", lint, e[:8], want)
		}
		e = e[8:]
	}
	if len(e) != 0 {
		t.Errorf("%d bytes after the last entry", len(e))
	}
}

func TestFitsInEBDA(t *testing.T) {
	if n := len(mustBuild(t, boot.MaxVCPUs)); boot.MPTableAddr+n > 0xa0000 {
		t.Errorf("%d bytes at %#x pass 0xa0000", n, boot.MPTableAddr)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		cpus int
		base uint64
	}{
		{0, boot.MPTableAddr},
		{-1, boot.MPTableAddr},
		{boot.MaxVCPUs + 1, boot.MPTableAddr},
		{1, boot.MPTableAddr + 8}, // not on a 16-byte boundary
		{1, 0x9ff80},              // 240 bytes from here pass 0xa0000
		{boot.MaxVCPUs, 0x9fe00},  // 860 bytes pass 0xa0000
		{1, 0xa0000 + 0x10},       // past the limit altogether
	} {
		if b, err := Build(tc.cpus, tc.base); err == nil {
			t.Errorf("Build(%d, %#x) returned %d bytes and no error", tc.cpus, tc.base, len(b))
		}
	}
	if _, err := Build(1, 0xa0000-240); err != nil {
		t.Errorf("Build(1, %#x), ending exactly at 0xa0000: %v", 0xa0000-240, err)
	}
}
