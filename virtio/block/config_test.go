package block

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/virtio"
)

func TestNewRefusesBadImages(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.img")
	odd := filepath.Join(dir, "odd.img")
	if err := os.WriteFile(odd, make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	good, _ := image(t, 4)
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"missing file", Config{Path: missing}, missing},
		{"directory", Config{Path: dir}, dir},
		{"character device", Config{Path: os.DevNull, ReadOnly: true}, os.DevNull},
		{"size not whole sectors", Config{Path: odd}, "1000 bytes"},
		{"empty path", Config{}, "path"},
		{"serial too long", Config{Path: good, ID: strings.Repeat("x", 21)}, "21 bytes"},
		{"serial not ASCII", Config{Path: good, ID: "disk\x00"}, "printable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.cfg)
			if err == nil {
				d.Close()
				t.Fatalf("New(%+v) succeeded", tt.cfg)
			}
			if !errors.Is(err, ErrBadConfig) {
				t.Errorf("error %v does not wrap ErrBadConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{Path: missing}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestNewCapacityAndIdentity(t *testing.T) {
	path, _ := image(t, 24)
	d, err := New(Config{Path: path, ID: strings.Repeat("s", 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.Capacity(); got != 24 {
		t.Errorf("capacity %d sectors, want 24", got)
	}
	if got := d.DeviceID(); got != specDeviceIDBlock {
		t.Errorf("device ID %d, want %d", got, specDeviceIDBlock)
	}
	if got := d.QueueMaxSizes(); len(got) != 1 || got[0] != 256 {
		t.Errorf("queue sizes %v, want one queue of 256", got)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewOpensReadOnlyImageReadOnly(t *testing.T) {
	path, _ := image(t, 4)
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if _, err := New(Config{Path: path}); err == nil {
			t.Error("New opened a 0400 image for writing")
		}
	}
	d, err := New(Config{Path: path, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only New of a 0400 image: %v", err)
	}
	d.Close()
}

func TestFeatures(t *testing.T) {
	path, _ := image(t, 8)
	rw, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	// Another image: the first is locked by the writable device.
	roPath, _ := image(t, 8)
	ro, err := New(Config{Path: roPath, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	want := uint64(specFSegMax | specFBlkSize | specFFlush | specFDiscard | specFWriteZeroes)
	if got := rw.Features(); got != want {
		t.Errorf("writable disk features %#x, want %#x", got, want)
	}
	want = specFSegMax | specFBlkSize | specFFlush | specFRO
	if got := ro.Features(); got != want {
		t.Errorf("read-only disk features %#x, want %#x", got, want)
	}
	for _, d := range []*Device{rw, ro} {
		if d.Features()&virtio.ReservedFeatures != 0 {
			t.Errorf("features %#x use reserved bits", d.Features())
		}
		if d.Features()&(specFConfigWCE|specFMQ|specFSizeMax) != 0 {
			t.Errorf("features %#x offer CONFIG_WCE, MQ or SIZE_MAX, which the device does not implement", d.Features())
		}
	}
}

// struct virtio_blk_config offsets (virtio 1.2 5.2.4): capacity le64 at 0,
// size_max 8, seg_max 12, geometry 16 (le16 cylinders, u8 heads, u8
// sectors), blk_size 20, topology 24 (u8, u8, le16, le32), writeback 32,
// unused0 33, num_queues 34, max_discard_sectors 36, max_discard_seg 40,
// discard_sector_alignment 44, max_write_zeroes_sectors 48,
// max_write_zeroes_seg 52, write_zeroes_may_unmap 56, unused1[3] 57.
func TestConfigSpaceLayout(t *testing.T) {
	path, _ := image(t, 40)
	d, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := make([]byte, 64)
	d.ReadConfig(0, cfg)
	le := binary.LittleEndian
	u32 := map[string]struct {
		off  int
		want uint32
	}{
		"size_max (SIZE_MAX not offered)": {8, 0},
		"seg_max":                         {12, qSize - 2},
		"geometry (not offered)":          {16, 0},
		"blk_size":                        {20, specSector},
		"topology (not offered)":          {24, 0},
		"topology opt_io_size":            {28, 0},
		"max_discard_sectors":             {36, MaxDiscardSectors},
		"max_discard_seg":                 {40, MaxDiscardSeg},
		"discard_sector_alignment":        {44, 8},
		"max_write_zeroes_sectors":        {48, MaxWriteZeroesSectors},
		"max_write_zeroes_seg":            {52, MaxWriteZeroesSeg},
	}
	if got := le.Uint64(cfg[0:]); got != 40 {
		t.Errorf("capacity at 0 = %d, want 40", got)
	}
	for name, f := range u32 {
		if got := le.Uint32(cfg[f.off:]); got != f.want {
			t.Errorf("%s at %d = %d, want %d", name, f.off, got, f.want)
		}
	}
	if cfg[32] != 0 || cfg[33] != 0 || le.Uint16(cfg[34:]) != 0 {
		t.Errorf("writeback/unused0/num_queues at 32..35 = % x, want zero", cfg[32:36])
	}
	if cfg[56] != 1 {
		t.Errorf("write_zeroes_may_unmap at 56 = %d, want 1", cfg[56])
	}
	if string(cfg[57:64]) != "\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("unused1 and secure-erase fields at 57..63 = % x, want zero", cfg[57:64])
	}
	if MaxDiscardSeg == 0 || MaxWriteZeroesSeg == 0 || MaxDiscardSectors == 0 || MaxWriteZeroesSectors == 0 {
		t.Error("a discard/write-zeroes limit is zero, which tells the driver nothing can be sent")
	}

	// A driver may read any field on its own, at any width.
	part := make([]byte, 4)
	d.ReadConfig(20, part)
	if got := le.Uint32(part); got != specSector {
		t.Errorf("4-byte read at 20 = %d, want %d", got, specSector)
	}
	one := make([]byte, 1)
	d.ReadConfig(0, one)
	if one[0] != 40 {
		t.Errorf("1-byte read of capacity = %d, want 40", one[0])
	}
	past := []byte{0, 0, 0, 0}
	d.ReadConfig(0x100, past)
	if le.Uint32(past) != 0 {
		t.Errorf("read past the end = % x, want zero", past)
	}

	// Writes change nothing: no field is writable without CONFIG_WCE.
	d.WriteConfig(0, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	d.WriteConfig(32, []byte{1})
	again := make([]byte, 64)
	d.ReadConfig(0, again)
	if string(again) != string(cfg) {
		t.Errorf("config space changed after writes:\n% x\nwas\n% x", again, cfg)
	}
}

func TestConfigSpaceReadOnlyDisk(t *testing.T) {
	path, _ := image(t, 16)
	d, err := New(Config{Path: path, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := make([]byte, 64)
	d.ReadConfig(0, cfg)
	le := binary.LittleEndian
	if got := le.Uint64(cfg[0:]); got != 16 {
		t.Errorf("capacity %d, want 16", got)
	}
	if got := le.Uint32(cfg[20:]); got != specSector {
		t.Errorf("blk_size %d, want %d", got, specSector)
	}
	for off := 36; off < 64; off++ {
		if cfg[off] != 0 {
			t.Fatalf("byte %d of a read-only disk's config = %d: discard/write-zeroes fields should be zero when not offered", off, cfg[off])
		}
	}
}
