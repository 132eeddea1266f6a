package devices_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ternvm/tern/devices"
)

// recorder remembers the last access it saw and fills reads with fill.
type recorder struct {
	fill      byte
	offset    uint64
	written   []byte
	reads     int
	writes    int
	lastWidth int
}

func (r *recorder) Read(offset uint64, data []byte) {
	r.reads++
	r.offset, r.lastWidth = offset, len(data)
	for i := range data {
		data[i] = r.fill
	}
}

func (r *recorder) Write(offset uint64, data []byte) {
	r.writes++
	r.offset, r.lastWidth = offset, len(data)
	r.written = append([]byte(nil), data...)
}

func TestBusRegisterErrors(t *testing.T) {
	tests := []struct {
		name       string
		base, size uint64
		want       error
	}{
		{"zero size", 0x1000, 0, devices.ErrZeroSize},
		{"wraps", math.MaxUint64, 2, devices.ErrOverflow},
		{"wraps by a lot", 0xffff_ffff_ffff_f000, 0x2000, devices.ErrOverflow},
		{"same range", 0x3f8, 8, devices.ErrOverlap},
		{"covers the start", 0x3f0, 9, devices.ErrOverlap},
		{"covers the end", 0x3ff, 4, devices.ErrOverlap},
		{"inside", 0x3fa, 2, devices.ErrOverlap},
		{"contains", 0x300, 0x200, devices.ErrOverlap},
		{"ends right before", 0x3f0, 8, nil},
		{"starts right after", 0x400, 8, nil},
		{"ends at the top of the space", math.MaxUint64 - 0xf, 0x10, nil},
		{"last byte of the space", math.MaxUint64, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := devices.NewBus("pio")
			if err := b.Register(0x3f8, 8, &recorder{}); err != nil {
				t.Fatalf("register COM1: %v", err)
			}
			err := b.Register(tc.base, tc.size, &recorder{})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Register(%#x, %#x) = %v, want %v", tc.base, tc.size, err, tc.want)
			}
		})
	}
}

func TestBusRegisterNilDevice(t *testing.T) {
	b := devices.NewBus("mmio")
	if err := b.Register(0, 1, nil); !errors.Is(err, devices.ErrNilDevice) {
		t.Fatalf("Register(nil device) = %v, want ErrNilDevice", err)
	}
}

func TestBusOverlapErrorNamesBothRanges(t *testing.T) {
	b := devices.NewBus("pio")
	if err := b.Register(0x3f8, 8, &recorder{}); err != nil {
		t.Fatal(err)
	}
	err := b.Register(0x3fc, 0x10, &recorder{})
	if err == nil {
		t.Fatal("overlapping Register succeeded")
	}
	for _, want := range []string{"pio", "[0x3f8, 0x3ff]", "[0x3fc, 0x40b]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBusLookup(t *testing.T) {
	com1, next := &recorder{fill: 0xaa}, &recorder{fill: 0xbb}
	b := devices.NewBus("pio")
	if err := b.Register(0x3f8, 8, com1); err != nil {
		t.Fatal(err)
	}
	// Registered out of order on purpose, and adjacent to COM1.
	if err := b.Register(0x400, 4, next); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		addr       uint64
		width      int
		dev        *recorder
		wantOffset uint64
	}{
		{"first byte", 0x3f8, 1, com1, 0},
		{"last byte", 0x3ff, 1, com1, 7},
		{"one past the end is the next device", 0x400, 1, next, 0},
		{"word inside", 0x3fe, 2, com1, 6},
		{"whole window", 0x3f8, 8, com1, 0},
		{"word running past the end", 0x3ff, 2, nil, 0},
		{"starts before the device", 0x3f7, 2, nil, 0},
		{"below everything", 0x3f7, 1, nil, 0},
		{"after the last device", 0x404, 1, nil, 0},
		{"spans both devices", 0x3fc, 8, nil, 0},
		{"empty access", 0x3f8, 0, nil, 0},
		{"wraps the address space", math.MaxUint64, 2, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			com1.reads, next.reads, com1.writes, next.writes = 0, 0, 0, 0
			buf := make([]byte, tc.width)
			ok := b.Read(tc.addr, buf)
			if ok != (tc.dev != nil) {
				t.Fatalf("Read(%#x, %d) = %v", tc.addr, tc.width, ok)
			}
			wok := b.Write(tc.addr, buf)
			if wok != ok {
				t.Fatalf("Write(%#x, %d) = %v, Read gave %v", tc.addr, tc.width, wok, ok)
			}
			if tc.dev == nil {
				if com1.reads+next.reads+com1.writes+next.writes != 0 {
					t.Fatal("an access nothing covers reached a device")
				}
				return
			}
			if tc.dev.reads != 1 || tc.dev.writes != 1 {
				t.Fatalf("device saw %d reads, %d writes; want 1 each", tc.dev.reads, tc.dev.writes)
			}
			if tc.dev.offset != tc.wantOffset || tc.dev.lastWidth != tc.width {
				t.Fatalf("device got offset %#x width %d, want %#x width %d", tc.dev.offset, tc.dev.lastWidth, tc.wantOffset, tc.width)
			}
			for _, c := range buf {
				if c != tc.dev.fill {
					t.Fatalf("read data %x, want every byte %#x", buf, tc.dev.fill)
				}
			}
		})
	}
}

func TestBusUnhandledReadLeavesData(t *testing.T) {
	b := devices.NewBus("mmio")
	buf := []byte{1, 2, 3, 4}
	if b.Read(0xd000_0000, buf) {
		t.Fatal("read of an empty bus succeeded")
	}
	if string(buf) != "\x01\x02\x03\x04" {
		t.Fatalf("unhandled read changed data to %x", buf)
	}
}

func TestBusWritePassesData(t *testing.T) {
	dev := &recorder{}
	b := devices.NewBus("mmio")
	if err := b.Register(0xd000_0000, 0x1000, dev); err != nil {
		t.Fatal(err)
	}
	if !b.Write(0xd000_0070, []byte{0x0f, 0, 0, 0}) {
		t.Fatal("write not dispatched")
	}
	if dev.offset != 0x70 || string(dev.written) != "\x0f\x00\x00\x00" {
		t.Fatalf("device got offset %#x data %x", dev.offset, dev.written)
	}
}
