package vmm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
)

// inflate rewrites the state file of a writeSnapshot directory after edit
// has changed its sections, and returns the file's size.
func inflate(t *testing.T, dir string, edit func(st *snapshot.State)) int64 {
	t.Helper()
	path := filepath.Join(dir, SnapshotStateFile)
	secs, err := snapshot.ReadStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := snapshot.NewState(secs)
	edit(st)
	if err := snapshot.WriteStateFile(path, st.Sections()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// replaceJSON puts into section name the JSON of the section with field
// (which must be there as null, or absent when before is given) set to
// value.
func replaceJSON(t *testing.T, st *snapshot.State, name, old, repl string) {
	t.Helper()
	data, err := st.Get(name)
	if err != nil || !strings.Contains(string(data), old) {
		t.Fatalf("section %s has no %s: %s", name, old, data)
	}
	st.Put(name, []byte(strings.Replace(string(data), old, repl, 1)))
}

// TestReadSnapshotOfInflatingJSONCostsAboutTheFileSize: JSON of tiny
// array elements ("{}," decodes to a 40-byte CPUID entry or a virtio queue)
// made a 60 MB state file cost 3.5 GB and half a minute. Each such file is
// refused before its payload is decoded, at a small multiple of its size.
func TestReadSnapshotOfInflatingJSONCostsAboutTheFileSize(t *testing.T) {
	empties := func(n int) string { return strings.Repeat("{},", n) + "{}" }
	for _, c := range []struct {
		name string
		edit func(t *testing.T, st *snapshot.State)
		want string
	}{
		{"thousands of device sections the configuration does not make", func(t *testing.T, st *snapshot.State) {
			for i := range 4000 {
				n := fmt.Sprintf("d%d", i)
				st.Put("device/"+n, []byte(`{"Name":"`+n+`","Transport":{"Queues":[`+empties(5000)+`]}}`))
			}
		}, "4001 device sections, the configuration makes 1 virtio devices"},
		{"a configuration of 18 million CPUID entries", func(t *testing.T, st *snapshot.State) {
			replaceJSON(t, st, "config", `"HostCPUID":null`, `"HostCPUID":[`+empties(18<<20)+`]`)
		}, `section "config": too large`},
		{"a vCPU section of 80,000 CPUID entries, within its size", func(t *testing.T, st *snapshot.State) {
			replaceJSON(t, st, "vcpu/0", `"CPUID":null`, `"CPUID":[`+empties(80000)+`]`)
		}, "more than 1024 elements"},
		{"a device's virtio queues", func(t *testing.T, st *snapshot.State) {
			st.Put("device/disk0", []byte(`{"Name":"disk0","Transport":{"Queues":[`+empties(20000)+`]}}`))
		}, "more than 1024 elements"},
		{"a dirty bitmap far longer than the guest's pages", func(t *testing.T, st *snapshot.State) {
			replaceJSON(t, st, "memory", `"Stats"`, `"Dirty":[`+strings.Repeat("0,", 25<<20)+`0],"Stats"`)
		}, `section "memory": too large`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := writeSnapshot(t, nil)
			size := inflate(t, dir, func(st *snapshot.State) { c.edit(t, st) })
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			t0 := time.Now()
			_, err := readSnapshot(dir)
			took := time.Since(t0)
			runtime.ReadMemStats(&m1)
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v, want ErrBadSnapshot saying %q", err, c.want)
			}
			// The file is read once and its sections copied out: about
			// twice its size; a 1 MiB allowance covers small files.
			if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 3*uint64(size)+1<<20 {
				t.Errorf("a %d-byte state file allocated %d bytes (%.1f times its size)", size, alloc, float64(alloc)/float64(size))
			}
			if took > 5*time.Second {
				t.Errorf("refusing it took %v", took)
			}
		})
	}
}

// TestReceiveRefusesAnInflatingHello: the hello's description of the VM is
// held to the same bounds before it is decoded.
func TestReceiveRefusesAnInflatingHello(t *testing.T) {
	raw := []byte(`{"Config":{"CPUs":1,"MemoryBytes":16777216},"CPUIDs":[[` + strings.Repeat("{},", 300000) + `{}]]}`)
	d := &migrationDest{opts: ReceiveOptions{KVMPath: filepath.Join(t.TempDir(), "no-kvm")}}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := d.Prepare(migrate.Hello{Config: raw, Regions: []snapshot.MemoryRegion{{GPA: 0, Size: 16 << 20}}})
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, snapshot.ErrTooLarge) || d.v != nil {
		t.Errorf("%v, want ErrTooLarge before any VM is built", err)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 1<<20 {
		t.Errorf("refusing a %d-byte hello allocated %d bytes", len(raw), alloc)
	}
}
