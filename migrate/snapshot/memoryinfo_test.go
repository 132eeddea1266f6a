package snapshot

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validFull() MemoryInfo {
	return MemoryInfo{Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 3 << 30}, {GPA: 4 << 30, Size: 1 << 30}}}
}

func TestMemoryInfoValidateAccepts(t *testing.T) {
	diff := validFull()
	diff.Kind, diff.Dirty = "diff", make(Bitmap, (4<<30)/4096/64)
	odd := MemoryInfo{Kind: "diff", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 65 * 4096}}, Dirty: Bitmap{1 << 63, 1}}
	largest := MemoryInfo{Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 1 << 20, Size: 1 << 46}}}
	adjacent := MemoryInfo{Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 4096}, {GPA: 4096, Size: 4096}}}
	for name, m := range map[string]MemoryInfo{"full": validFull(), "diff": diff, "65-page diff": odd, "64 TiB": largest, "adjacent": adjacent} {
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := validFull().TotalBytes(); got != 4<<30 {
		t.Errorf("TotalBytes = %d, want %d", got, 4<<30)
	}
}

func TestMemoryInfoValidateRefuses(t *testing.T) {
	r := validFull().Regions
	one := []MemoryRegion{{GPA: 0, Size: 1 << 20}} // 256 pages: 4 words
	for name, m := range map[string]MemoryInfo{
		"unknown kind":        {Kind: "half", PageSize: 4096, Regions: r},
		"empty kind":          {PageSize: 4096, Regions: r},
		"2 MiB pages":         {Kind: "full", PageSize: 2 << 20, Regions: r},
		"no page size":        {Kind: "full", Regions: r},
		"no regions":          {Kind: "full", PageSize: 4096},
		"65 regions":          {Kind: "full", PageSize: 4096, Regions: manyRegions(65)},
		"empty region":        {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 0}}},
		"partial page":        {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 4097}}},
		"unaligned address":   {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 512, Size: 4096}}},
		"overlap":             {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 8192}, {GPA: 4096, Size: 4096}}},
		"descending":          {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 1 << 32, Size: 4096}, {GPA: 0, Size: 4096}}},
		"over 64 TiB":         {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 1<<46 + 4096}}},
		"over 64 TiB, summed": {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 1 << 45}, {GPA: 1 << 45, Size: 1<<45 + 4096}}},
		"wrapping address":    {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 1<<64 - 4096, Size: 8192}}},
		"beyond 52 bits":      {Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 1 << 52, Size: 4096}}},
		"full with a bitmap":  {Kind: "full", PageSize: 4096, Regions: one, Dirty: make(Bitmap, 4)},
		"diff without bitmap": {Kind: "diff", PageSize: 4096, Regions: one},
		"short bitmap":        {Kind: "diff", PageSize: 4096, Regions: one, Dirty: make(Bitmap, 3)},
		"long bitmap":         {Kind: "diff", PageSize: 4096, Regions: one, Dirty: make(Bitmap, 5)},
		"mark past the end":   {Kind: "diff", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 65 * 4096}}, Dirty: Bitmap{0, 1 << 1}},
	} {
		err := m.Validate()
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func manyRegions(n int) []MemoryRegion {
	r := make([]MemoryRegion, n)
	for i := range r {
		r[i] = MemoryRegion{GPA: uint64(i) << 20, Size: 4096}
	}
	return r
}

func TestMemoryInfoJSONRoundTrip(t *testing.T) {
	diff := MemoryInfo{Kind: "diff", PageSize: 4096, Regions: []MemoryRegion{{GPA: 1 << 32, Size: 128 * 4096}}, Dirty: Bitmap{1<<64 - 1, 5}}
	var s State
	s.PutJSON("memory", diff)
	s.PutJSON("full", validFull())
	var got MemoryInfo
	if err := s.GetJSON("memory", &got); err != nil {
		t.Fatal(err)
	}
	if got.Dirty[0] != 1<<64-1 || got.Dirty[1] != 5 || got.Regions[0].GPA != 1<<32 || got.Validate() != nil {
		t.Errorf("decoded %+v", got)
	}
	data, _ := s.Get("full")
	if strings.Contains(string(data), "Dirty") {
		t.Errorf("a full memory section carries a Dirty field: %s", data)
	}
	var full MemoryInfo
	if err := json.Unmarshal(data, &full); err != nil || full.Dirty != nil || full.Validate() != nil {
		t.Errorf("full section decoded to %+v, %v", full, err)
	}
}

func TestCheckMemoryFile(t *testing.T) {
	dir := t.TempDir()
	info := MemoryInfo{Kind: "full", PageSize: 4096, Regions: []MemoryRegion{{GPA: 0, Size: 256 << 20}}}
	good, short, long := filepath.Join(dir, "good"), filepath.Join(dir, "short"), filepath.Join(dir, "long")
	for path, size := range map[string]int64{good: 256 << 20, short: 1000, long: 256<<20 + 1} {
		f, _ := os.Create(path)
		f.Truncate(size)
		f.Close()
	}
	if err := CheckMemoryFile(good, info); err != nil {
		t.Errorf("a file of the right size: %v", err)
	}
	err := CheckMemoryFile(short, info)
	if want := "memory file " + short + " is 1000 bytes, the snapshot's guest has 268435456"; !errors.Is(err, ErrTruncated) || err.Error() != want {
		t.Errorf("short file: %v, want %q", err, want)
	}
	if err := CheckMemoryFile(long, info); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), long) {
		t.Errorf("long file: %v", err)
	}
	if err := CheckMemoryFile(filepath.Join(dir, "missing"), info); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := CheckMemoryFile(dir, info); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
	if err := CheckMemoryFile(good, MemoryInfo{Kind: "full", PageSize: 4096}); !errors.Is(err, ErrMalformed) {
		t.Errorf("an invalid memory section: %v", err)
	}
}
