package acpi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ternvm/tern/boot"
)

// Offsets and values in these tests are written from the ACPI 6.4
// specification (sections 5.2.5 to 5.2.12), independently of the
// constants the package uses.

const base = boot.ACPITablesAddr

var le = binary.LittleEndian

func build(t *testing.T, cfg Config) []byte {
	t.Helper()
	b, err := Build(cfg, base)
	if err != nil {
		t.Fatalf("Build(%+v): %v", cfg, err)
	}
	return b
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// table returns the system description table at guest address addr,
// checking that its header's length stays inside the blob.
func table(t *testing.T, blob []byte, addr uint64) []byte {
	t.Helper()
	if addr < base || addr-base+36 > uint64(len(blob)) {
		t.Fatalf("table address %#x outside the blob [%#x, %#x)", addr, base, base+uint64(len(blob)))
	}
	off := addr - base
	n := uint64(le.Uint32(blob[off+4:]))
	if n < 36 || off+n > uint64(len(blob)) {
		t.Fatalf("table at %#x has length %d, past the blob", addr, n)
	}
	return blob[off : off+n]
}

func xsdtEntries(t *testing.T, blob []byte) map[string][]byte {
	t.Helper()
	xsdt := table(t, blob, le.Uint64(blob[24:]))
	tables := map[string][]byte{}
	for off := 36; off < len(xsdt); off += 8 {
		tb := table(t, blob, le.Uint64(xsdt[off:]))
		tables[string(tb[:4])] = tb
	}
	return tables
}

func fadtAndDSDT(t *testing.T, blob []byte) (fadt, dsdt []byte) {
	t.Helper()
	fadt = xsdtEntries(t, blob)["FACP"]
	if fadt == nil {
		t.Fatal("no FACP in the XSDT")
	}
	return fadt, table(t, blob, le.Uint64(fadt[140:]))
}

var fullConfig = Config{
	CPUs: 4,
	VirtioDevices: []VirtioDevice{
		{Addr: 0xd0000000, Size: 0x1000, IRQ: 5},
		{Addr: 0xd0001000, Size: 0x1000, IRQ: 6},
	},
	WithSerial: true,
	WithI8042:  true,
}

func TestRSDP(t *testing.T) {
	blob := build(t, fullConfig)
	if len(blob) < 36 {
		t.Fatalf("blob is %d bytes", len(blob))
	}
	r := blob[:36]
	if string(r[0:8]) != "RSD PTR " {
		t.Errorf("signature %q", r[0:8])
	}
	if s := sum(r[:20]); s != 0 {
		t.Errorf("checksum over the first 20 bytes sums to %#x", s)
	}
	if string(r[9:15]) != "TERNVM" {
		t.Errorf("OEMID %q", r[9:15])
	}
	if r[15] != 2 {
		t.Errorf("revision %d, want 2", r[15])
	}
	if got := le.Uint32(r[16:]); got != 0 {
		t.Errorf("RSDT address %#x, want 0 (XSDT only)", got)
	}
	if got := le.Uint32(r[20:]); got != 36 {
		t.Errorf("length %d, want 36", got)
	}
	if s := sum(r); s != 0 {
		t.Errorf("extended checksum over 36 bytes sums to %#x", s)
	}
	if xsdt := table(t, blob, le.Uint64(r[24:])); string(xsdt[:4]) != "XSDT" {
		t.Errorf("XSDT address points at %q", xsdt[:4])
	}
	if base%16 != 0 {
		t.Errorf("RSDP at %#x is not 16-byte aligned", base)
	}
}

func TestTableHeaders(t *testing.T) {
	blob := build(t, fullConfig)
	_, dsdt := fadtAndDSDT(t, blob)
	all := xsdtEntries(t, blob)
	all["XSDT"] = table(t, blob, le.Uint64(blob[24:]))
	all["DSDT"] = dsdt
	wantRevision := map[string]byte{"XSDT": 1, "FACP": 6, "APIC": 5, "DSDT": 2}
	for sig, rev := range wantRevision {
		tb := all[sig]
		if tb == nil {
			t.Errorf("no %s table reachable from the RSDP", sig)
			continue
		}
		if string(tb[0:4]) != sig {
			t.Errorf("%s: signature %q", sig, tb[0:4])
		}
		if tb[8] != rev {
			t.Errorf("%s: revision %d, want %d", sig, tb[8], rev)
		}
		if s := sum(tb); s != 0 {
			t.Errorf("%s: bytes sum to %#x, want 0", sig, s)
		}
		if string(tb[10:16]) != "TERNVM" {
			t.Errorf("%s: OEMID %q", sig, tb[10:16])
		}
		if string(tb[16:24]) != "TERN"+sig {
			t.Errorf("%s: OEM table id %q", sig, tb[16:24])
		}
		if le.Uint32(tb[24:]) != 1 {
			t.Errorf("%s: OEM revision %d", sig, le.Uint32(tb[24:]))
		}
		if string(tb[28:32]) != "TERN" {
			t.Errorf("%s: creator id %q", sig, tb[28:32])
		}
	}
	if len(all) != 4 {
		t.Errorf("tables %v, want exactly XSDT, FACP, APIC, DSDT", keys(all))
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

func TestXSDTListsFADTAndMADT(t *testing.T) {
	blob := build(t, fullConfig)
	xsdt := table(t, blob, le.Uint64(blob[24:]))
	if len(xsdt) != 36+2*8 {
		t.Fatalf("XSDT length %d, want 52 (two entries)", len(xsdt))
	}
	for i, want := range []string{"FACP", "APIC"} {
		tb := table(t, blob, le.Uint64(xsdt[36+8*i:]))
		if string(tb[:4]) != want {
			t.Errorf("XSDT entry %d points at %q, want %q", i, tb[:4], want)
		}
	}
}

// gas is a Generic Address Structure: space id, bit width, bit offset,
// access size, 64-bit address.
func gas(space, width, offset, access byte, addr uint64) []byte {
	b := []byte{space, width, offset, access, 0, 0, 0, 0, 0, 0, 0, 0}
	le.PutUint64(b[4:], addr)
	return b
}

func TestFADT(t *testing.T) {
	blob := build(t, fullConfig)
	fadt, dsdt := fadtAndDSDT(t, blob)
	if len(fadt) != 276 {
		t.Fatalf("FADT length %d, want 276", len(fadt))
	}
	if string(dsdt[:4]) != "DSDT" {
		t.Errorf("X_DSDT (140) points at %q", dsdt[:4])
	}
	xdsdt := le.Uint64(fadt[140:])
	if got := le.Uint32(fadt[40:]); uint64(got) != xdsdt {
		t.Errorf("DSDT (40) = %#x, X_DSDT = %#x; they must agree", got, xdsdt)
	}
	if got := le.Uint32(fadt[36:]); got != 0 {
		t.Errorf("FIRMWARE_CTRL %#x, want 0: no FACS on a hardware-reduced platform", got)
	}
	if got := le.Uint64(fadt[132:]); got != 0 {
		t.Errorf("X_FIRMWARE_CTRL %#x, want 0", got)
	}

	flags := le.Uint32(fadt[112:])
	const hwReduced, resetRegSup = 1 << 20, 1 << 10
	if flags&hwReduced == 0 || flags&resetRegSup == 0 {
		t.Errorf("flags %#x lack HW_REDUCED_ACPI (bit 20) or RESET_REG_SUP (bit 10)", flags)
	}
	const pwrButton, slpButton = 1 << 4, 1 << 5
	if flags&pwrButton == 0 || flags&slpButton == 0 {
		t.Errorf("flags %#x claim fixed-feature buttons (bits 4, 5 clear)", flags)
	}

	arch := le.Uint16(fadt[109:])
	if arch&(1<<2) == 0 || arch&(1<<3) == 0 {
		t.Errorf("IAPC_BOOT_ARCH %#x: want VGA Not Present (bit 2) and MSI Not Supported (bit 3)", arch)
	}
	if arch&(1<<5) != 0 {
		t.Errorf("IAPC_BOOT_ARCH %#x says no CMOS RTC, but the VM has one", arch)
	}

	wantIO8 := func(name string, off int, port uint64) {
		t.Helper()
		want := gas(1, 8, 0, 1, port) // SystemIO, 8 bits, byte access
		if got := fadt[off : off+12]; !bytes.Equal(got, want) {
			t.Errorf("%s at %d = % x, want % x", name, off, got, want)
		}
	}
	wantIO8("RESET_REG", 116, boot.PortACPIReset)
	wantIO8("SLEEP_CONTROL_REG", 244, boot.PortACPISleepCtl)
	wantIO8("SLEEP_STATUS_REG", 256, boot.PortACPISleepSts)
	if fadt[128] != boot.ACPIResetValue {
		t.Errorf("RESET_VALUE %#x, want %#x", fadt[128], boot.ACPIResetValue)
	}
	if fadt[131] != 4 {
		t.Errorf("FADT minor version %d, want 4 (ACPI 6.4)", fadt[131])
	}
	if got := string(fadt[268:276]); got != "TERNVMM " {
		t.Errorf("hypervisor vendor identity %q", got)
	}

	// Hardware-reduced: no SCI, SMI, PM1/PM2/PM timer/GPE blocks.
	for _, f := range []struct {
		name     string
		from, to int
	}{
		{"SCI_INT..GPE1_BASE", 46, 95},
		{"X_PM1a_EVT_BLK..X_GPE1_BLK", 148, 244},
	} {
		for i := f.from; i < f.to; i++ {
			if fadt[i] != 0 {
				t.Errorf("%s: byte %d is %#x, want 0", f.name, i, fadt[i])
				break
			}
		}
	}
}

func TestMADT(t *testing.T) {
	for _, cpus := range []int{1, 4, boot.MaxVCPUs} {
		madt := xsdtEntries(t, build(t, Config{CPUs: cpus}))["APIC"]
		if madt == nil {
			t.Fatal("no APIC table in the XSDT")
		}
		if got := le.Uint32(madt[36:]); got != boot.LAPICAddr {
			t.Errorf("%d CPUs: local APIC address %#x", cpus, got)
		}
		if got := le.Uint32(madt[40:]); got != 0 {
			t.Errorf("%d CPUs: flags %#x, want 0 (no PCAT_COMPAT)", cpus, got)
		}
		if want := 44 + 8*cpus + 12 + 6; len(madt) != want {
			t.Errorf("%d CPUs: MADT length %d, want %d", cpus, len(madt), want)
		}
		var lapics, ioapics, nmis int
		for off := 44; off < len(madt); {
			typ, n := madt[off], int(madt[off+1])
			if n < 2 || off+n > len(madt) {
				t.Fatalf("%d CPUs: entry at %d has length %d", cpus, off, n)
			}
			e := madt[off : off+n]
			switch typ {
			case 0: // Processor Local APIC
				if n != 8 {
					t.Errorf("local APIC entry length %d, want 8", n)
				}
				if int(e[2]) != lapics || int(e[3]) != lapics {
					t.Errorf("local APIC %d: UID %d, APIC id %d", lapics, e[2], e[3])
				}
				if le.Uint32(e[4:]) != 1 {
					t.Errorf("local APIC %d: flags %#x, want Enabled", lapics, le.Uint32(e[4:]))
				}
				lapics++
			case 1: // I/O APIC
				if n != 12 {
					t.Errorf("I/O APIC entry length %d, want 12", n)
				}
				if int(e[2]) != cpus {
					t.Errorf("I/O APIC id %d, want %d", e[2], cpus)
				}
				if le.Uint32(e[4:]) != boot.IOAPICAddr || le.Uint32(e[8:]) != 0 {
					t.Errorf("I/O APIC address %#x, GSI base %d", le.Uint32(e[4:]), le.Uint32(e[8:]))
				}
				ioapics++
			case 4: // Local APIC NMI
				if n != 6 {
					t.Errorf("local APIC NMI entry length %d, want 6", n)
				}
				if e[2] != 0xff || e[5] != 1 {
					t.Errorf("local APIC NMI: UID %#x LINT%d, want all processors, LINT1", e[2], e[5])
				}
				nmis++
			default:
				t.Errorf("%d CPUs: unexpected MADT entry type %d", cpus, typ)
			}
			off += n
		}
		if lapics != cpus || ioapics != 1 || nmis != 1 {
			t.Errorf("%d CPUs: %d local APICs, %d I/O APICs, %d NMI entries", cpus, lapics, ioapics, nmis)
		}
	}
}

// The expected DSDT bodies are assembled by hand from the AML grammar.
var (
	s5AML = []byte{0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00}

	com1AML = cat(
		[]byte{0x5b, 0x82, 0x2b}, []byte("COM1"), // Device, PkgLength 43
		[]byte{0x08}, []byte("_HID"), []byte{0x0c, 0x41, 0xd0, 0x05, 0x01}, // EisaId("PNP0501")
		[]byte{0x08}, []byte("_UID"), []byte{0x01},
		[]byte{0x08}, []byte("_CRS"), []byte{0x11, 0x10, 0x0a, 0x0d},
		[]byte{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08}, // IO(Decode16, 0x3f8, 0x3f8, 0, 8)
		[]byte{0x22, 0x10, 0x00},                               // IRQNoFlags(){4}
		[]byte{0x79, 0x0f},
	)

	rtcAML = cat(
		[]byte{0x5b, 0x82, 0x22}, []byte("RTC_"), // Device, PkgLength 34
		[]byte{0x08}, []byte("_HID"), []byte{0x0c, 0x41, 0xd0, 0x0b, 0x00}, // EisaId("PNP0B00")
		[]byte{0x08}, []byte("_CRS"), []byte{0x11, 0x0d, 0x0a, 0x0a},
		[]byte{0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x00, 0x02}, // IO(Decode16, 0x70, 0x70, 0, 2)
		[]byte{0x79, 0x5d},
	)

	vr00AML = cat(
		[]byte{0x5b, 0x82, 0x41, 0x04}, []byte("VR00"), // Device, PkgLength 65
		[]byte{0x08}, []byte("_HID"), []byte{0x0d}, []byte("LNRO0005"), []byte{0x00},
		[]byte{0x08}, []byte("_UID"), []byte{0x00},
		[]byte{0x08}, []byte("_CCA"), []byte{0x01},
		[]byte{0x08}, []byte("_CRS"), []byte{0x11, 0x1a, 0x0a, 0x17},
		[]byte{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00},
		[]byte{0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00}, // consumer, edge, high, exclusive
		[]byte{0x79, 0x7f},
	)
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// The PS/2 keyboard controller, written out from the ACPI 6.4 resource
// descriptor formats (6.4.2.5 I/O port, 6.4.2.1 IRQ without flags).
var ps2kAML = cat(
	[]byte{0x5b, 0x82, 0x2d}, []byte("PS2K"), // Device, PkgLength 45
	[]byte{0x08}, []byte("_HID"), []byte{0x0c, 0x41, 0xd0, 0x03, 0x03}, // EisaId("PNP0303")
	[]byte{0x08}, []byte("_CRS"), []byte{0x11, 0x18, 0x0a, 0x15},
	[]byte{0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x00, 0x01}, // IO(Decode16, 0x60, 0x60, 0, 1)
	[]byte{0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x00, 0x01}, // IO(Decode16, 0x64, 0x64, 0, 1)
	[]byte{0x22, 0x02, 0x00},                               // IRQNoFlags(){1}
	[]byte{0x79, 0x49},
)

func TestDSDTKeyboard(t *testing.T) {
	_, dsdt := fadtAndDSDT(t, build(t, Config{CPUs: 1, WithI8042: true}))
	want := cat(s5AML,
		[]byte{0x10, 0x35, '\\', '_', 'S', 'B', '_'}, // Scope, PkgLength 53
		ps2kAML)
	if got := dsdt[36:]; !bytes.Equal(got, want) {
		t.Errorf("DSDT body\n got % x\nwant % x", got, want)
	}
}

func TestDSDTOneVirtioDevice(t *testing.T) {
	_, dsdt := fadtAndDSDT(t, build(t, Config{
		CPUs:          1,
		VirtioDevices: []VirtioDevice{{Addr: 0xd0000000, Size: 0x1000, IRQ: 5}},
	}))
	want := cat(s5AML,
		[]byte{0x10, 0x4a, 0x04, '\\', '_', 'S', 'B', '_'}, // Scope, PkgLength 74
		vr00AML)
	if got := dsdt[36:]; !bytes.Equal(got, want) {
		t.Errorf("DSDT body\n got % x\nwant % x", got, want)
	}
}

func TestDSDTSerialOnly(t *testing.T) {
	_, dsdt := fadtAndDSDT(t, build(t, Config{CPUs: 1, WithSerial: true}))
	want := cat(s5AML,
		[]byte{0x10, 0x33, '\\', '_', 'S', 'B', '_'}, // Scope, PkgLength 51
		com1AML)
	if got := dsdt[36:]; !bytes.Equal(got, want) {
		t.Errorf("DSDT body\n got % x\nwant % x", got, want)
	}
}

func TestDSDTSerialAndRTC(t *testing.T) {
	_, dsdt := fadtAndDSDT(t, build(t, Config{CPUs: 1, WithSerial: true, WithRTC: true}))
	want := cat(s5AML,
		[]byte{0x10, 0x48, 0x05, '\\', '_', 'S', 'B', '_'}, // Scope, PkgLength 88 (two bytes)
		com1AML, rtcAML)
	if got := dsdt[36:]; !bytes.Equal(got, want) {
		t.Errorf("DSDT body\n got % x\nwant % x", got, want)
	}
}

func TestDSDTNamesDevicesInOrder(t *testing.T) {
	var devs []VirtioDevice
	for irq := uint32(9); irq < 24; irq++ {
		devs = append(devs, VirtioDevice{Addr: 0xd0000000 + uint64(irq)*0x1000, Size: 0x1000, IRQ: irq})
	}
	_, dsdt := fadtAndDSDT(t, build(t, Config{CPUs: 2, VirtioDevices: devs}))
	last := -1
	for i, d := range devs {
		name := fmt.Sprintf("VR%02X", i)
		at := bytes.Index(dsdt, []byte(name))
		if at <= last {
			t.Fatalf("device %s missing or out of order", name)
		}
		last = at
		// DeviceOp and a two-byte PkgLength precede the name.
		if !bytes.Equal(dsdt[at-4:at-2], []byte{0x5b, 0x82}) {
			t.Errorf("%s: % x before the name, want DeviceOp 5b 82", name, dsdt[at-4:at-2])
		}
		// Name(_UID, i) follows the 15-byte Name(_HID, "LNRO0005").
		uid := dsdt[at+4+15:]
		if !bytes.HasPrefix(uid, cat([]byte{0x08}, []byte("_UID"))) {
			t.Fatalf("%s: no _UID after _HID", name)
		}
		wantUID := []byte{0x0a, byte(i)}
		if i < 2 {
			wantUID = []byte{byte(i)} // Zero, One
		}
		if !bytes.HasPrefix(uid[5:], wantUID) {
			t.Errorf("%s: _UID % x, want % x", name, uid[5:5+len(wantUID)], wantUID)
		}
		irq := make([]byte, 4)
		le.PutUint32(irq, d.IRQ)
		if !bytes.Contains(dsdt[at:], cat([]byte{0x89, 0x06, 0x00, 0x03, 0x01}, irq)) {
			t.Errorf("%s: no edge, active-high interrupt %d", name, d.IRQ)
		}
	}
}

func TestBuildFitsAtMaximum(t *testing.T) {
	var devs []VirtioDevice
	for irq := uint32(5); irq < IOAPICPins; irq++ {
		if irq == 8 {
			continue
		}
		devs = append(devs, VirtioDevice{Addr: 0xd0000000 + uint64(irq)*0x1000, Size: 0x1000, IRQ: irq})
	}
	blob := build(t, Config{CPUs: boot.MaxVCPUs, VirtioDevices: devs})
	if base+uint64(len(blob)) > boot.ACPITablesEnd {
		t.Errorf("%d bytes at %#x pass %#x", len(blob), base, boot.ACPITablesEnd)
	}
}

func TestBuildErrors(t *testing.T) {
	dev := func(addr uint64, irq uint32) VirtioDevice { return VirtioDevice{Addr: addr, Size: 0x1000, IRQ: irq} }
	for name, tc := range map[string]struct {
		cfg  Config
		base uint64
	}{
		"no CPUs":            {Config{CPUs: 0}, base},
		"too many CPUs":      {Config{CPUs: boot.MaxVCPUs + 1}, base},
		"unaligned base":     {Config{CPUs: 1}, base + 8},
		"past the area":      {Config{CPUs: 1}, boot.ACPITablesEnd - 256},
		"base past the area": {Config{CPUs: 1}, boot.ACPITablesEnd + 0x1000},
		"empty window":       {Config{CPUs: 1, VirtioDevices: []VirtioDevice{{Addr: 0xd0000000, IRQ: 5}}}, base},
		"window above 4 GiB": {Config{CPUs: 1, VirtioDevices: []VirtioDevice{dev(0xffff_f800, 5)}}, base},
		"overlapping":        {Config{CPUs: 1, VirtioDevices: []VirtioDevice{dev(0xd0000000, 5), dev(0xd0000800, 6)}}, base},
		"same IRQ":           {Config{CPUs: 1, VirtioDevices: []VirtioDevice{dev(0xd0000000, 5), dev(0xd0001000, 5)}}, base},
		"IRQ of COM1":        {Config{CPUs: 1, WithSerial: true, VirtioDevices: []VirtioDevice{dev(0xd0000000, 4)}}, base},
		"IRQ past the pins":  {Config{CPUs: 1, VirtioDevices: []VirtioDevice{dev(0xd0000000, 24)}}, base},
		"RTC IRQ":            {Config{CPUs: 1, VirtioDevices: []VirtioDevice{dev(0xd0000000, 8)}}, base},
		"timer IRQ":          {Config{CPUs: 1, VirtioDevices: []VirtioDevice{dev(0xd0000000, 0)}}, base},
	} {
		if b, err := Build(tc.cfg, tc.base); err == nil {
			t.Errorf("%s: Build returned %d bytes and no error", name, len(b))
		}
	}
	// IRQ 4 is free when there is no serial port.
	if _, err := Build(Config{CPUs: 1, VirtioDevices: []VirtioDevice{dev(0xd0000000, 4)}}, base); err != nil {
		t.Errorf("IRQ 4 without COM1: %v", err)
	}
}

func TestVirtioDeviceRefusesKeyboardIRQ(t *testing.T) {
	cfg := Config{CPUs: 1, WithI8042: true, VirtioDevices: []VirtioDevice{{Addr: 0xd0000000, Size: 0x1000, IRQ: 1}}}
	if _, err := Build(cfg, base); err == nil || !bytes.Contains([]byte(err.Error()), []byte("i8042")) {
		t.Errorf("virtio device on the keyboard's IRQ 1: %v, want an error naming the i8042", err)
	}
}
