package aml

import (
	"bytes"
	"errors"
	"testing"
)

// The expected bytes below are assembled by hand from the ACPI 6.5 AML
// grammar (chapter 20) and resource descriptor formats (section 6.4).

func encode(t *testing.T, objs ...Object) []byte {
	t.Helper()
	b, err := Encode(objs...)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func TestPkgLengthForms(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x00}},
		{63, []byte{0x3f}},                          // largest one-byte form
		{64, []byte{0x40, 0x04}},                    // 1 following byte, nibble 0, then 64>>4
		{4095, []byte{0x4f, 0xff}},                  // largest two-byte form
		{4096, []byte{0x80, 0x00, 0x01}},            // 2 following bytes
		{1 << 20, []byte{0xc0, 0x00, 0x00, 0x01}},   // 3 following bytes
		{1<<28 - 1, []byte{0xcf, 0xff, 0xff, 0xff}}, // the maximum
	} {
		got, err := AppendPkgLength(nil, tc.n)
		if err != nil {
			t.Fatalf("AppendPkgLength(%d): %v", tc.n, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("AppendPkgLength(%d) = % x, want % x", tc.n, got, tc.want)
		}
	}
	for _, n := range []int{-1, 1 << 28} {
		if _, err := AppendPkgLength(nil, n); !errors.Is(err, ErrTooLong) {
			t.Errorf("AppendPkgLength(%d) error = %v, want ErrTooLong", n, err)
		}
	}
}

// A PkgLength counts its own bytes, so the form changes one byte before
// the body alone would reach the limit.
func TestPkgLengthCountsItself(t *testing.T) {
	for _, tc := range []struct {
		bufLen int
		head   []byte // BufferOp, PkgLength, BufferSize
	}{
		// body = BytePrefix 60 + 60 bytes = 62; +1 PkgLength byte = 63.
		{60, []byte{0x11, 0x3f, 0x0a, 60}},
		// body = 63; one byte would say 64, too big: two bytes, 65.
		{61, []byte{0x11, 0x41, 0x04, 0x0a, 61}},
		// body = WordPrefix 4090 (3) + 4090 = 4093; +2 = 4095.
		{4090, []byte{0x11, 0x4f, 0xff, 0x0b, 0xfa, 0x0f}},
		// body = 4094; +2 = 4096 does not fit two bytes: +3 = 4097.
		{4091, []byte{0x11, 0x81, 0x00, 0x01, 0x0b, 0xfb, 0x0f}},
	} {
		got := encode(t, Buffer(make([]byte, tc.bufLen)))
		if !bytes.HasPrefix(got, tc.head) || len(got) != len(tc.head)+tc.bufLen {
			t.Errorf("Buffer(%d bytes) starts % x (len %d), want % x (len %d)",
				tc.bufLen, got[:len(tc.head)], len(got), tc.head, len(tc.head)+tc.bufLen)
		}
	}
}

func TestIntegers(t *testing.T) {
	for _, tc := range []struct {
		obj  Object
		want []byte
	}{
		{Integer(0), []byte{0x00}},
		{Integer(1), []byte{0x01}},
		{Ones{}, []byte{0xff}},
		{Integer(5), []byte{0x0a, 0x05}},
		{Integer(0xff), []byte{0x0a, 0xff}},
		{Integer(0x1234), []byte{0x0b, 0x34, 0x12}},
		{Integer(0x12345678), []byte{0x0c, 0x78, 0x56, 0x34, 0x12}},
		{Integer(0x1_0000_0000), []byte{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}},
	} {
		if got := encode(t, tc.obj); !bytes.Equal(got, tc.want) {
			t.Errorf("%#v = % x, want % x", tc.obj, got, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	want := []byte{0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00}
	if got := encode(t, String("LNRO0005")); !bytes.Equal(got, want) {
		t.Errorf("String = % x, want % x", got, want)
	}
	for _, bad := range []string{"a\x00b", "caf\xc3\xa9"} {
		if _, err := Encode(String(bad)); !errors.Is(err, ErrBadValue) {
			t.Errorf("String(%q) error = %v, want ErrBadValue", bad, err)
		}
	}
}

func TestEISAID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want uint32
	}{
		{"PNP0501", 0x0105d041}, // 16550 UART
		{"PNP0A03", 0x030ad041}, // PCI host bridge
		{"PNP0B00", 0x000bd041}, // AT RTC
	} {
		got, err := CompressEISAID(tc.id)
		if err != nil || got != tc.want {
			t.Errorf("CompressEISAID(%q) = %#08x, %v; want %#08x", tc.id, got, err, tc.want)
		}
	}
	want := []byte{0x0c, 0x41, 0xd0, 0x05, 0x01}
	if got := encode(t, EISAID("PNP0501")); !bytes.Equal(got, want) {
		t.Errorf(`EISAID("PNP0501") = % x, want % x`, got, want)
	}
	for _, bad := range []string{"pnp0501", "PNP050", "PNP050G", "PNP05011", "P1P0501"} {
		if _, err := CompressEISAID(bad); !errors.Is(err, ErrBadValue) {
			t.Errorf("CompressEISAID(%q) error = %v, want ErrBadValue", bad, err)
		}
	}
}

func TestNameStrings(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []byte
	}{
		{"_S5_", []byte("_S5_")},
		{"_SB", []byte("_SB_")},
		{"COM1", []byte("COM1")},
		{`\_SB_`, []byte(`\_SB_`)},
		{`\`, []byte{'\\', 0x00}},
		{"^FOO", []byte("^FOO_")},
		{"^^A", []byte("^^A___")},
		{`\_SB.PCI0`, append([]byte{'\\', 0x2e}, "_SB_PCI0"...)},
		{"A.B.C", append([]byte{0x2f, 3}, "A___B___C___"...)},
	} {
		got, err := AppendNameString(nil, tc.path)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("AppendNameString(%q) = % x, %v; want % x", tc.path, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "1ABC", "ABCDE", "abc", "A..B", "A-B", "^", `\^A`, "A."} {
		if _, err := AppendNameString(nil, bad); !errors.Is(err, ErrBadName) {
			t.Errorf("AppendNameString(%q) error = %v, want ErrBadName", bad, err)
		}
	}
}

func TestNameS5Package(t *testing.T) {
	got := encode(t, Name{Path: "_S5_", Value: Package{Integer(5), Integer(0), Integer(0), Integer(0)}})
	want := []byte{
		0x08, '_', 'S', '5', '_', // NameOp _S5_
		0x12, 0x07, 0x04, // PackageOp, PkgLength 7, NumElements 4
		0x0a, 0x05, 0x00, 0x00, 0x00, // BytePrefix 5, Zero, Zero, Zero
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Name(_S5_, Package(){5,0,0,0}) = % x, want % x", got, want)
	}
	if _, err := Encode(Package(make([]Object, 256))); !errors.Is(err, ErrTooLong) {
		t.Errorf("256-element package error = %v, want ErrTooLong", err)
	}
}

func TestScopeAndDevice(t *testing.T) {
	got := encode(t, Scope{Path: `\_SB_`})
	want := []byte{0x10, 0x06, '\\', '_', 'S', 'B', '_'}
	if !bytes.Equal(got, want) {
		t.Errorf(`Scope(\_SB_){} = % x, want % x`, got, want)
	}

	got = encode(t, Device{Path: "COM1", Body: []Object{Name{Path: "_UID", Value: Integer(1)}}})
	want = []byte{
		0x5b, 0x82, 0x0b, 'C', 'O', 'M', '1', // DeviceOp, PkgLength 11
		0x08, '_', 'U', 'I', 'D', 0x01, // Name(_UID, One)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Device(COM1){Name(_UID, One)} = % x, want % x", got, want)
	}

	if _, err := Encode(Device{Path: "bad"}); !errors.Is(err, ErrBadName) {
		t.Errorf("Device(bad) error = %v, want ErrBadName", err)
	}
	if _, err := Encode(Scope{Path: "ABCD", Body: []Object{nil}}); err == nil {
		t.Error("Scope with a nil object encoded without error")
	}
}

func TestResourceTemplateVirtio(t *testing.T) {
	got := encode(t, ResourceTemplate{
		Memory32Fixed{ReadWrite: true, Base: 0xd0000000, Length: 0x1000},
		Interrupt{Consumer: true, Edge: true, Numbers: []uint32{5}},
	})
	want := []byte{
		0x11, 0x1a, 0x0a, 0x17, // BufferOp, PkgLength 26, BufferSize 23
		0x86, 0x09, 0x00, 0x01, // Memory32Fixed, length 9, read-write
		0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00,
		0x89, 0x06, 0x00, 0x03, 0x01, // Extended IRQ, length 6, consumer|edge, 1 entry
		0x05, 0x00, 0x00, 0x00,
		0x79, 0x7f, // End Tag, checksum: the 23 bytes sum to 0x300
	}
	if !bytes.Equal(got, want) {
		t.Errorf("virtio _CRS = % x\nwant           % x", got, want)
	}
}

func TestResourceTemplateSerial(t *testing.T) {
	got := encode(t, ResourceTemplate{
		IO{Decode16: true, Min: 0x3f8, Max: 0x3f8, Alignment: 0, Length: 8},
		IRQNoFlags{4},
	})
	want := []byte{
		0x11, 0x10, 0x0a, 0x0d, // BufferOp, PkgLength 16, BufferSize 13
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, // IO(Decode16, 0x3f8, 0x3f8, 0, 8)
		0x22, 0x10, 0x00, // IRQNoFlags(){4}
		0x79, 0x0f, // End Tag, checksum: the 13 bytes sum to 0x300
	}
	if !bytes.Equal(got, want) {
		t.Errorf("COM1 _CRS = % x\nwant        % x", got, want)
	}
}

func TestInterruptFlags(t *testing.T) {
	b, err := ResourceTemplate{Interrupt{ActiveLow: true, Shared: true, Numbers: []uint32{16, 17}}}.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	// Level, active low, shared, producer: bits 2 and 3; two entries.
	want := []byte{0x89, 0x0a, 0x00, 0x0c, 0x02, 16, 0, 0, 0, 17, 0, 0, 0}
	if !bytes.HasPrefix(b, want) {
		t.Errorf("Interrupt = % x, want prefix % x", b, want)
	}
}

func TestResourceErrors(t *testing.T) {
	for name, r := range map[string]Resource{
		"no interrupts":       Interrupt{},
		"IRQNoFlags 16":       IRQNoFlags{16},
		"memory past 4 GiB":   Memory32Fixed{Base: 0xffff_f000, Length: 0x2000},
		"IO min above max":    IO{Min: 0x3f8, Max: 0x2f8},
		"nil resource in set": nil,
	} {
		if _, err := (ResourceTemplate{r}).Bytes(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
