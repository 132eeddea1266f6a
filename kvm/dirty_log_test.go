package kvm

import "testing"

func TestDirtyBitmapWords(t *testing.T) {
	// One bit per 4 KiB page, rounded up to 64-bit words.
	tests := map[uint64]int{
		4096:            1,
		64 * 4096:       1,
		65 * 4096:       2,
		256 << 20:       1024, // 65536 pages
		(1 << 30) + 100: 4097, // a partial page still counts
	}
	for size, want := range tests {
		if got := DirtyBitmapWords(size); got != want {
			t.Errorf("DirtyBitmapWords(%#x) = %d, want %d", size, got, want)
		}
	}
}

// The kernel writes a slot-sized bitmap wherever it is told to, so a
// bitmap that is too small must be refused before the ioctl.
func TestGetDirtyLogRefusesShortBitmap(t *testing.T) {
	vm := &VM{slots: map[uint32]uint64{0: 128 * 4096}}
	if err := vm.GetDirtyLog(0, make([]uint64, 1)); err == nil {
		t.Error("GetDirtyLog accepted a 1-word bitmap for a 128-page slot")
	}
	if err := vm.GetDirtyLog(0, nil); err == nil {
		t.Error("GetDirtyLog accepted a nil bitmap")
	}
	if err := vm.GetDirtyLog(7, make([]uint64, 1024)); err == nil {
		t.Error("GetDirtyLog accepted a slot it never set")
	}
}

func TestClearDirtyLogRefusesShortBitmap(t *testing.T) {
	vm := &VM{slots: map[uint32]uint64{}}
	if err := vm.ClearDirtyLog(0, 0, 65, make([]uint64, 1)); err == nil {
		t.Error("ClearDirtyLog accepted a 1-word bitmap for 65 pages")
	}
	if err := vm.ClearDirtyLog(0, 0, 0, nil); err == nil {
		t.Error("ClearDirtyLog accepted a nil bitmap")
	}
}
