package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/migrate/snapshot"
)

// fakeSource is a VM whose RAM is byte slices and whose "guest" writes
// pages when the migration takes the dirty log (guest).
type fakeSource struct {
	mu       sync.Mutex
	mem      [][]byte
	l        layout
	gpas     []uint64
	initial  snapshot.Bitmap
	dirty    snapshot.Bitmap
	takes    int
	throttle int
	// guest runs at each TakeDirty while not paused: take counts from 1.
	guest func(f *fakeSource, take int)

	dirtyLog, paused       bool
	pauses, resumes, stops int
	throttles              []int
	sections               []snapshot.Section
	pauseErr               error
	startDirtyCalls        int
	onPause                func()
}

// newFakeSource makes regions of the given page counts, filled with a
// pattern that leaves every fifth page zero; the initial bitmap marks
// every page but the last of each region (left zero: never sent).
func newFakeSource(pages ...int) *fakeSource {
	f := &fakeSource{sections: []snapshot.Section{{Name: "config", Data: []byte(`{"cpus":1}`)}, {Name: "vcpu/0", Data: []byte(`{"rip":4096}`)}}}
	gpa := uint64(0)
	for _, n := range pages {
		f.mem = append(f.mem, make([]byte, n*pageSize))
		f.gpas = append(f.gpas, gpa)
		gpa += uint64(n)*pageSize + 1<<20
	}
	f.l, _ = newLayout(f.mem)
	f.initial = snapshot.NewBitmap(f.l.pages * pageSize)
	f.dirty = snapshot.NewBitmap(f.l.pages * pageSize)
	for i, r := range f.mem {
		n := uint64(len(r)) / pageSize
		for k := uint64(0); k+1 < n; k++ {
			p := f.l.first[i] + k
			f.initial.Set(p)
			if p%5 != 0 {
				f.fill(p, byte(p*7+1))
			}
		}
	}
	return f
}

func (f *fakeSource) page(p uint64) []byte {
	i := f.l.region(p)
	return f.l.span(i, p, 1)
}

// fill writes page p with a pattern from seed (0: zeroes).
func (f *fakeSource) fill(p uint64, seed byte) {
	pg := f.page(p)
	for j := range pg {
		if seed == 0 {
			pg[j] = 0
		} else {
			pg[j] = seed + byte(j*13) + byte(j>>8)
		}
	}
}

// write is the guest writing page p.
func (f *fakeSource) write(p uint64, seed byte) {
	f.fill(p, seed)
	f.dirty.Set(p)
}

func (f *fakeSource) Hello() (Hello, error) {
	h := Hello{Config: []byte(`{"vm":"fake"}`)}
	for i, r := range f.mem {
		h.Regions = append(h.Regions, snapshot.MemoryRegion{GPA: f.gpas[i], Size: uint64(len(r))})
	}
	return h, nil
}
func (f *fakeSource) Regions() [][]byte { return f.mem }
func (f *fakeSource) StartDirtyLog() (snapshot.Bitmap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirtyLog = true
	f.startDirtyCalls++
	return append(snapshot.Bitmap(nil), f.initial...), nil
}
func (f *fakeSource) TakeDirty() (snapshot.Bitmap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.takes++
	if !f.paused && f.guest != nil {
		f.guest(f, f.takes)
	}
	d := f.dirty
	f.dirty = snapshot.NewBitmap(f.l.pages * pageSize)
	return d, nil
}
func (f *fakeSource) StopDirtyLog() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirtyLog = false
	f.stops++
	return nil
}
func (f *fakeSource) Throttle(p int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle = p
	f.throttles = append(f.throttles, p)
}
func (f *fakeSource) Pause() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pauseErr != nil {
		return f.pauseErr
	}
	f.paused = true
	f.pauses++
	if f.onPause != nil {
		f.onPause()
	}
	return nil
}
func (f *fakeSource) Resume() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = false
	f.resumes++
	return nil
}
func (f *fakeSource) State() ([]snapshot.Section, error) { return f.sections, nil }

// fakeDest is a destination whose RAM is byte slices.
type fakeDest struct {
	mu         sync.Mutex
	hello      Hello
	mem        [][]byte
	sections   []snapshot.Section
	prepareErr error
	loadErr    error
	startErr   error
	onStart    func()
	fillByte   byte // fresh memory content (0 like a fresh mapping)
	prepared   bool
	loaded     bool
	started    bool
	maxBytes   uint64
	reuse      bool
}

func (d *fakeDest) Prepare(h Hello) ([][]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prepareErr != nil {
		return nil, d.prepareErr
	}
	limit := d.maxBytes
	if limit == 0 {
		limit = 64 << 20
	}
	var total uint64
	for _, r := range h.Regions {
		total += r.Size
	}
	if total > limit {
		return nil, fmt.Errorf("this host has no room for %d bytes of RAM", total)
	}
	d.hello = h
	if d.reuse && len(d.mem) == len(h.Regions) {
		return d.mem, nil // a benchmark's next iteration
	}
	d.mem = nil
	for _, r := range h.Regions {
		m := make([]byte, r.Size)
		if d.fillByte != 0 {
			for i := range m {
				m[i] = d.fillByte
			}
		}
		d.mem = append(d.mem, m)
	}
	d.prepared = true
	return d.mem, nil
}

func (d *fakeDest) Load(s []snapshot.Section) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.prepared {
		return errors.New("load before prepare")
	}
	if d.loadErr != nil {
		return d.loadErr
	}
	d.sections = s
	d.loaded = true
	return nil
}

func (d *fakeDest) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded {
		return errors.New("start before load")
	}
	if d.startErr != nil {
		return d.startErr
	}
	d.started = true
	if d.onStart != nil {
		d.onStart()
	}
	return nil
}

// pipePair is a synchronous in-memory connection pair.
func pipePair(t testing.TB) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// unixPair is a connected pair of Unix stream sockets.
func unixPair(t testing.TB) (net.Conn, net.Conn) {
	dir, err := os.MkdirTemp("", "mig")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

type outcome struct {
	st     Status
	err    error
	res    ReceiveResult
	recvEr error
}

// migrate runs Send on sc and Receive on dc, each closing its end when
// done (as a caller would), and waits for both.
func migrate(t testing.TB, ctx context.Context, sc, dc net.Conn, src Source, dst Destination, opts SendOptions) outcome {
	var o outcome
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.res, o.recvEr = Receive(context.Background(), dc, dst)
		dc.Close()
	}()
	o.st, o.err = Send(ctx, sc, src, opts)
	sc.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Receive did not return")
	}
	return o
}

// sameMemory compares the destination's RAM with the source's.
func sameMemory(t testing.TB, src *fakeSource, dst *fakeDest) {
	t.Helper()
	if len(src.mem) != len(dst.mem) {
		t.Fatalf("%d regions at the destination, %d at the source", len(dst.mem), len(src.mem))
	}
	for i := range src.mem {
		if !bytes.Equal(src.mem[i], dst.mem[i]) {
			for off := 0; off < len(src.mem[i]); off += pageSize {
				if !bytes.Equal(src.mem[i][off:off+pageSize], dst.mem[i][off:off+pageSize]) {
					t.Fatalf("region %d differs first at page %d", i, off/pageSize)
				}
			}
		}
	}
}

// recorder keeps a copy of what is written through it.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	n, err := r.Conn.Write(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// streamConn replays a recorded stream to Receive and discards what it
// answers.
type streamConn struct {
	io.Reader
}

func (streamConn) Write(p []byte) (int, error) { return len(p), nil }
