package snapshot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// pageAlignedGuest copies regions into one anonymous mapping, as guest
// RAM is: page-aligned, which O_DIRECT needs.
func pageAlignedGuest(t *testing.T, regions [][]byte) [][]byte {
	t.Helper()
	var size int
	for _, r := range regions {
		size += len(r)
	}
	m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	var out [][]byte
	off := 0
	for _, r := range regions {
		copy(m[off:], r)
		out = append(out, m[off:off+len(r):off+len(r)])
		off += len(r)
	}
	return out
}

// takesODirect says whether the file system of dir takes O_DIRECT.
func takesODirect(t *testing.T, dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|unix.O_DIRECT, 0o600)
	if errors.Is(err, unix.EINVAL) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return true
}

// Where the file system takes O_DIRECT, a memory file goes from guest
// memory to the disk without filling the page cache, and reads back right.
func TestWriteMemoryBypassesThePageCache(t *testing.T) {
	dir := t.TempDir()
	if !takesODirect(t, dir) {
		t.Skipf("the file system of %s does not take O_DIRECT; the buffered path is tested by the other tests", dir)
	}
	regions := pageAlignedGuest(t, makeGuest(7, 300, 700))
	path := filepath.Join(dir, "memory")
	f := createFile(t, path)
	st, err := WriteMemory(f, regions)
	if err != nil {
		t.Fatal(err)
	}
	if n := residentPages(t, path); n != 0 {
		t.Errorf("%d of the %d pages written are in the page cache: the write was not direct", n, st.StoredPages)
	}
	if !bytes.Equal(fileBytes(t, path), concat(regions)) {
		t.Error("the memory file is not the regions back to back")
	}

	// A diff too.
	dirty := NewBitmap(st.TotalBytes)
	for p := uint64(0); p < st.TotalBytes/PageSize; p += 3 {
		dirty.Set(p)
	}
	dpath := filepath.Join(dir, "diff")
	if _, err := WriteMemoryDiff(createFile(t, dpath), regions, dirty); err != nil {
		t.Fatal(err)
	}
	if n := residentPages(t, dpath); n != 0 {
		t.Errorf("%d pages of the diff are in the page cache: the write was not direct", n)
	}
}

// Memory that is not page-aligned (O_DIRECT refuses it) is written
// through the page cache instead, and reads back right.
func TestWriteMemoryFromUnalignedMemory(t *testing.T) {
	aligned := makeGuest(3, 64)[0]
	buf := make([]byte, len(aligned)+1)
	unaligned := buf[1:]
	copy(unaligned, aligned)
	path := filepath.Join(t.TempDir(), "memory")
	if _, err := WriteMemory(createFile(t, path), [][]byte{unaligned}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fileBytes(t, path), aligned) {
		t.Error("the memory file is not the region")
	}
}
