package migrate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
)

// fakeDiskSource is a fakeSource with disks: byte slices, a list of the
// ranges that hold data (the rest reads as zero), and a write log.
type fakeDiskSource struct {
	*fakeSource
	dmu       sync.Mutex
	disks     [][]byte
	names     []string
	allocated [][]Extent
	log       [][]Extent
	logOn     bool
	logStops  int
	reads     int
}

func newFakeDiskSource(f *fakeSource, sizes ...int) *fakeDiskSource {
	s := &fakeDiskSource{fakeSource: f}
	for i, n := range sizes {
		s.disks = append(s.disks, make([]byte, n))
		s.names = append(s.names, fmt.Sprintf("/images/disk%d.img", i))
		s.allocated = append(s.allocated, nil)
		s.log = append(s.log, nil)
	}
	return s
}

// fillDisk puts a pattern in [off, off+n) of disk i and marks it
// allocated, as data written before the migration.
func (s *fakeDiskSource) fillDisk(i, off, n int, seed byte) {
	for j := off; j < off+n; j++ {
		s.disks[i][j] = seed + byte(j*7) + byte(j>>9)
	}
	s.allocated[i] = append(s.allocated[i], Extent{uint64(off), uint64(n)})
}

// writeDisk is the guest writing disk i: the log records the range once
// it is written, as virtio/block does.
func (s *fakeDiskSource) writeDisk(i, off int, p []byte) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	copy(s.disks[i][off:], p)
	if s.logOn {
		s.log[i] = append(s.log[i], Extent{uint64(off), uint64(len(p))})
	}
}

func (s *fakeDiskSource) Disks() ([]DiskInfo, error) {
	var out []DiskInfo
	for i, d := range s.disks {
		out = append(out, DiskInfo{Name: s.names[i], Size: uint64(len(d))})
	}
	return out, nil
}

func (s *fakeDiskSource) StartDiskLog() ([][]Extent, error) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.logOn = true
	return slices.Clone(s.allocated), nil
}

func (s *fakeDiskSource) ReadDisk(i int, p []byte, off int64) error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.reads++
	copy(p, s.disks[i][off:])
	return nil
}

func (s *fakeDiskSource) TakeDiskDirty() ([][]Extent, error) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	l := s.log
	s.log = make([][]Extent, len(s.disks))
	return l, nil
}

func (s *fakeDiskSource) StopDiskLog() error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	s.logOn = false
	s.logStops++
	return nil
}

// fakeDiskDest is a fakeDest that takes streamed disks it has a local
// file for (names, as vmm's --disk overrides).
type fakeDiskDest struct {
	*fakeDest
	dmu      sync.Mutex
	names    map[string]bool // nil: every name
	disks    [][]byte
	infos    []DiskInfo
	finished bool
	writes   int
	zeroes   int
}

func (d *fakeDiskDest) PrepareDisks(disks []DiskInfo) error {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	for _, di := range disks {
		if d.names != nil && !d.names[di.Name] {
			return fmt.Errorf("disk %s is streamed, but no --disk names a local file for it", di.Name)
		}
	}
	var total uint64
	for _, di := range disks {
		total += min(di.Size, 1<<40)
	}
	if total > 64<<20 {
		return fmt.Errorf("this host has no room for %d bytes of disks", total)
	}
	d.infos = disks
	d.disks = nil
	for _, di := range disks {
		// Stale bytes where a fresh file would have zeroes would show a
		// zero extent not applied; the fake starts clean like vmm.
		d.disks = append(d.disks, make([]byte, di.Size))
	}
	return nil
}

func (d *fakeDiskDest) WriteDisk(i int, p []byte, off int64) error {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if d.finished {
		return errors.New("write after FinishDisks")
	}
	d.writes++
	copy(d.disks[i][off:], p)
	return nil
}

func (d *fakeDiskDest) ZeroDisk(i int, off, n int64) error {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if d.finished {
		return errors.New("zero after FinishDisks")
	}
	d.zeroes++
	clear(d.disks[i][off : off+n])
	return nil
}

func (d *fakeDiskDest) FinishDisks() error {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	d.finished = true
	return nil
}

func (d *fakeDiskDest) Load(s []snapshot.Section) error {
	d.dmu.Lock()
	unfinished := d.infos != nil && !d.finished
	d.dmu.Unlock()
	if unfinished {
		return errors.New("load before the disks were finished")
	}
	return d.fakeDest.Load(s)
}

func sameDisks(t *testing.T, src *fakeDiskSource, dst *fakeDiskDest) {
	t.Helper()
	if len(src.disks) != len(dst.disks) {
		t.Fatalf("%d disks at the destination, %d at the source", len(dst.disks), len(src.disks))
	}
	for i := range src.disks {
		if !bytes.Equal(src.disks[i], dst.disks[i]) {
			for j := range src.disks[i] {
				if src.disks[i][j] != dst.disks[i][j] {
					t.Fatalf("disk %d differs first at byte %d", i, j)
				}
			}
		}
	}
}

// pattern returns n non-zero bytes from seed.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*3) | 1
	}
	return p
}

// diskGuest writes disks and memory in the first rounds, zeroes a range
// that held data, and writes once more as the source pauses (a request
// the device completes while it quiesces).
func diskGuest(s *fakeDiskSource) {
	s.fakeSource.guest = func(f *fakeSource, take int) {
		busyGuest(f, take)
		if take > 3 {
			return
		}
		s.writeDisk(0, take*100_000+take, pattern(70_000, byte(take)))
		s.writeDisk(1, 3000*take, pattern(512, byte(take)))
		if take == 2 {
			s.writeDisk(0, 1<<20, make([]byte, 256<<10)) // data turned to zeroes
		}
	}
	s.fakeSource.onPause = func() {
		s.writeDisk(1, len(s.disks[1])-4096, pattern(4096, 99))
	}
}

func TestMigrateWithDisks(t *testing.T) {
	src := newFakeDiskSource(newFakeSource(40, 300), 6<<20, 1<<20+512)
	src.fillDisk(0, 0, 3<<20, 1)                                            // allocated data
	src.fillDisk(0, 4<<20, 64<<10, 2)                                       // more, after a hole
	src.allocated[0] = append(src.allocated[0], Extent{5 << 20, 512 << 10}) // allocated zeroes
	src.fillDisk(1, 512, 1<<20, 3)
	diskGuest(src)
	dst := &fakeDiskDest{fakeDest: &fakeDest{}}
	sc, dc := pipePair(t)
	rec := &recorder{Conn: sc}
	o := migrate(t, context.Background(), rec, dc, src, dst, SendOptions{Downtime: time.Nanosecond, WithDisks: true})
	if o.err != nil || o.recvEr != nil {
		t.Fatalf("Send: %v; Receive: %v", o.err, o.recvEr)
	}
	sameMemory(t, src.fakeSource, dst.fakeDest)
	sameDisks(t, src, dst)
	want := []DiskInfo{{"/images/disk0.img", 6 << 20}, {"/images/disk1.img", 1<<20 + 512}}
	if !reflect.DeepEqual(dst.hello.Disks, want) || !reflect.DeepEqual(dst.infos, want) {
		t.Errorf("hello disks %+v, prepared %+v; want %+v", dst.hello.Disks, dst.infos, want)
	}
	st := o.st
	if st.DiskTotalBytes != 7<<20+512 || st.DiskBytesSent < 4<<20 || st.DiskRemainingBytes != 0 {
		t.Errorf("status %+v", st)
	}
	// The hole and the allocated zeroes cost no data: what went is the
	// data written before, and what the guest wrote (and rewrote).
	if max := uint64(3<<20+64<<10+1<<20) + 4*(70_000+512+256<<10) + 4096 + 4*diskUnit; st.DiskBytesSent > max {
		t.Errorf("%d disk bytes sent, more than the %d of data", st.DiskBytesSent, max)
	}
	if src.logStops != 1 || src.logOn {
		t.Errorf("disk log stopped %d times, on %v; want stopped once", src.logStops, src.logOn)
	}
	if dst.zeroes == 0 {
		t.Error("no zero extent reached the destination")
	}
	// Every disk extent, the last ones after the pause included, comes
	// before the state.
	types := messageTypes(t, rec.bytes())
	state := slices.Index(types, msgState)
	if last := lastIndex(types, msgDiskExtents); last < 0 || last > state {
		t.Errorf("message types %v: want disk extents, all before the state", types)
	}
	pre, _ := splitStream(t, rec.bytes())
	if f := binary.LittleEndian.Uint32(pre[12:]); f != preambleDisks {
		t.Errorf("preamble flags %#x, want %#x", f, preambleDisks)
	}
}

func lastIndex(ts []msgType, t msgType) int {
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i] == t {
			return i
		}
	}
	return -1
}

// Without WithDisks a disk source migrates as before: no flag, no disk
// in the hello, no disk read; and with it but no disks, the same.
func TestDisksOnlyWhenAsked(t *testing.T) {
	for name, c := range map[string]struct {
		opts  SendOptions
		sizes []int
	}{
		"not asked": {SendOptions{}, []int{1 << 20}},
		"no disks":  {SendOptions{WithDisks: true}, nil},
	} {
		src := newFakeDiskSource(newFakeSource(8), c.sizes...)
		dst := &fakeDiskDest{fakeDest: &fakeDest{}}
		sc, dc := pipePair(t)
		rec := &recorder{Conn: sc}
		o := migrate(t, context.Background(), rec, dc, src, dst, c.opts)
		if o.err != nil || o.recvEr != nil {
			t.Fatalf("%s: Send: %v; Receive: %v", name, o.err, o.recvEr)
		}
		if src.reads != 0 || src.logOn || len(dst.hello.Disks) != 0 || dst.infos != nil {
			t.Errorf("%s: %d disk reads, hello %+v", name, src.reads, dst.hello)
		}
		if slices.Contains(messageTypes(t, rec.bytes()), msgDiskExtents) || rec.bytes()[12] != 0 {
			t.Errorf("%s: disk extents or the disk flag went out", name)
		}
	}
}

// A destination that cannot take streamed disks, or has no local file
// for one, refuses in the handshake: nothing but the hello crosses.
func TestDiskStreamingRefused(t *testing.T) {
	for name, c := range map[string]struct {
		dst  Destination
		want string
	}{
		"no disk destination": {&fakeDest{}, "cannot receive streamed disks"},
		"no override":         {&fakeDiskDest{fakeDest: &fakeDest{}, names: map[string]bool{"/images/disk0.img": true}}, "disk /images/disk1.img is streamed, but no --disk"},
	} {
		src := newFakeDiskSource(newFakeSource(8), 1<<20, 1<<20)
		sc, dc := pipePair(t)
		rec := &recorder{Conn: sc}
		o := migrate(t, context.Background(), rec, dc, src, c.dst, SendOptions{WithDisks: true})
		if !errors.Is(o.err, ErrRefused) || !strings.Contains(o.err.Error(), c.want) {
			t.Errorf("%s: Send: %v, want ErrRefused with %q", name, o.err, c.want)
		}
		if types := messageTypes(t, rec.bytes()); !reflect.DeepEqual(types, []msgType{msgHello}) {
			t.Errorf("%s: source sent %v, want only the hello", name, types)
		}
		if src.reads != 0 || src.logOn || src.fakeSource.startDirtyCalls != 0 {
			t.Errorf("%s: the source's disks were touched", name)
		}
	}
	// A source that cannot stream disks fails before it connects.
	src := newFakeSource(8)
	sc, dc := pipePair(t)
	o := migrate(t, context.Background(), sc, dc, src, &fakeDiskDest{fakeDest: &fakeDest{}}, SendOptions{WithDisks: true})
	if o.err == nil || !strings.Contains(o.err.Error(), "cannot stream its disks") {
		t.Errorf("Send from a source without disks: %v", o.err)
	}
}

// A failure after disks went stops the disk log and resumes the guest.
func TestDiskMigrationFailsCleanly(t *testing.T) {
	src := newFakeDiskSource(newFakeSource(16), 1<<20)
	src.fillDisk(0, 0, 1<<20, 5)
	dst := &fakeDiskDest{fakeDest: &fakeDest{loadErr: errors.New("no such device")}}
	sc, dc := pipePair(t)
	o := migrate(t, context.Background(), sc, dc, src, dst, SendOptions{WithDisks: true})
	if !errors.Is(o.err, ErrAborted) || o.recvEr == nil {
		t.Errorf("Send: %v; Receive: %v", o.err, o.recvEr)
	}
	if src.logOn || src.logStops != 1 {
		t.Errorf("disk log on %v, stopped %d times", src.logOn, src.logStops)
	}
	checkResumed(t, src.fakeSource)
}

// extentOf is {disk, flags, offset, length} of a disk-extents entry.
type extentOf struct {
	disk, flags uint32
	off         uint64
	n           uint32
}

// diskPayload encodes extents, with data for each non-zero one.
func diskPayload(es ...extentOf) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(es)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	var data []byte
	for _, e := range es {
		b = binary.LittleEndian.AppendUint32(b, e.disk)
		b = binary.LittleEndian.AppendUint32(b, e.flags)
		b = binary.LittleEndian.AppendUint64(b, e.off)
		b = binary.LittleEndian.AppendUint32(b, e.n)
		b = binary.LittleEndian.AppendUint32(b, 0)
		if e.flags&extentZero == 0 && e.n <= 1<<20 {
			data = append(data, pattern(int(e.n), byte(e.off))...)
		}
	}
	return append(b, data...)
}

// newDiskStream is a source's stream with the disk flag and a hello
// announcing disks of the given sizes.
func newDiskStream(sizes ...uint64) *streamOf {
	s := &streamOf{}
	s.mw.w = &s.buf
	s.buf.Write(appendPreamble(nil, preambleDisks))
	h := Hello{Regions: []snapshot.MemoryRegion{{GPA: 0, Size: 4 * pageSize}}, Config: []byte(`{}`)}
	for i, n := range sizes {
		h.Disks = append(h.Disks, DiskInfo{Name: fmt.Sprint("d", i), Size: n})
	}
	p, _ := json.Marshal(h)
	return s.msg(msgHello, p)
}

func replayDisks(stream []byte) (*fakeDiskDest, ReceiveResult, error) {
	dst := &fakeDiskDest{fakeDest: &fakeDest{maxBytes: 1 << 20}}
	res, err := Receive(context.Background(), streamConn{bytes.NewReader(stream)}, dst)
	return dst, res, err
}

func TestDiskStreamsReplayed(t *testing.T) {
	good := newDiskStream(8192, 4096).
		msg(msgDiskExtents, diskPayload(extentOf{0, 0, 512, 1024}, extentOf{1, extentZero, 0, 4096}, extentOf{1, 0, 4095, 1})).
		state().msg(msgCommit)
	dst, res, err := replayDisks(good.buf.Bytes())
	if err != nil || !res.Started {
		t.Fatalf("a good stream: %v", err)
	}
	if !bytes.Equal(dst.disks[0][512:1536], pattern(1024, 0)) || dst.disks[1][4095] != pattern(1, 255)[0] || !dst.finished {
		t.Errorf("the extents did not land")
	}

	hugeCount := binary.LittleEndian.AppendUint32(nil, maxExtents+1)
	cases := []struct {
		name   string
		stream *streamOf
		want   string
	}{
		{"past the disk", newDiskStream(8192).msg(msgDiskExtents, diskPayload(extentOf{0, 0, 8192 - 512, 1024})), "goes past disk 0's 8192 bytes"},
		{"offset overflow", newDiskStream(8192).msg(msgDiskExtents, diskPayload(extentOf{0, extentZero, 1<<64 - 512, 1024})), "goes past disk 0's"},
		{"no such disk", newDiskStream(8192).msg(msgDiskExtents, diskPayload(extentOf{1, 0, 0, 512})), "names disk 1 of 1"},
		{"unknown flag", newDiskStream(8192).msg(msgDiskExtents, diskPayload(extentOf{0, 2, 0, 512})), "unknown flags 0x2"},
		{"empty extent", newDiskStream(8192).msg(msgDiskExtents, diskPayload(extentOf{0, 0, 0, 0})), "is empty"},
		{"data missing", newDiskStream(8192).msg(msgDiskExtents, diskPayload(extentOf{0, 0, 0, 512})[:8+24+100]), "the header says"},
		{"too much data", newDiskStream(32<<20).msg(msgDiskExtents, diskPayload(extentOf{0, 0, 0, 4 << 20}, extentOf{0, 0, 4 << 20, 4<<20 + 512})), "more than 8388608 bytes"},
		{"huge count", newDiskStream(8192).msg(msgDiskExtents, append(hugeCount, 0, 0, 0, 0)), "at most 4096"},
		{"after the state", newDiskStream(8192).state().msg(msgDiskExtents, diskPayload(extentOf{0, 0, 0, 512})), "disk extents after the state"},
		{"flag without disks", newDiskStream(), "the preamble's disk flag is true"},
		{"disks without flag", func() *streamOf {
			s := newStream(t, false)
			p, _ := json.Marshal(Hello{Regions: []snapshot.MemoryRegion{{GPA: 0, Size: pageSize}}, Config: []byte(`{}`), Disks: []DiskInfo{{"d", 512}}})
			return s.msg(msgHello, p)
		}(), "1 streamed disks, but the preamble's disk flag is false"},
		{"disk too big", newDiskStream(1 << 63), "disk 0 of 9223372036854775808 bytes"},
	}
	for _, c := range cases {
		dst, res, err := replayDisks(c.stream.buf.Bytes())
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrProtocol with %q", c.name, err, c.want)
		}
		if res.Started || dst.started {
			t.Errorf("%s: started", c.name)
		}
	}
	// A reserved field in an entry.
	p := diskPayload(extentOf{0, 0, 0, 512})
	binary.LittleEndian.PutUint32(p[8+20:], 7)
	if _, _, err := replayDisks(newDiskStream(8192).msg(msgDiskExtents, p).buf.Bytes()); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "reserved field 0x7") {
		t.Errorf("reserved field: %v", err)
	}
	// A flipped byte anywhere in a disk message's payload is caught by
	// its checksum (or, in the table, by the checks before it).
	s := newDiskStream(8192).msg(msgDiskExtents, diskPayload(extentOf{0, 0, 1024, 2048})).state().msg(msgCommit).buf.Bytes()
	_, msgs := splitStream(t, s)
	at := preambleSize + len(msgs[0]) + headerSize
	for _, off := range []int{at + 8 + 24 + 5, at + 8 + 24 + 2047, at + 8 + 24 + 2048} {
		bad := bytes.Clone(s)
		bad[off] ^= 0x40
		if _, res, err := replayDisks(bad); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "message 1 (disk-extents): payload checksum mismatch") || res.Started {
			t.Errorf("flip at %d: %v", off, err)
		}
	}
}
