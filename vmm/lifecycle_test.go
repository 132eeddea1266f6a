package vmm_test

// These tests drive the VM lifecycle (build, run, pause, resume, snapshot,
// stop, restore, poweroff) on this host's real /dev/kvm, with the tiny
// hand-written guests of test/tinyguest: on the project's PVM-backed
// machines a stock kernel cannot boot, but these guests run, and they make
// every step visible on the console.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

const (
	// tickEvery gives a tick every few tens of milliseconds on the
	// PVM-backed development machines (each instruction emulated).
	tickEvery = 40000
	// quiet is how long a paused guest must show no sign of life.
	quiet = 300 * time.Millisecond
	// patience bounds every wait for the guest: generous, as the
	// machines are shared and the guest is emulated.
	patience = 10 * time.Second
	guestRAM = 32 << 20
)

// console is a guest console a test can read while the VM writes it.
type console struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// ticks returns the counter values of the complete tick lines in out (a
// line cut by a pause or snapshot is left out), failing on a line that
// is neither a tick nor the start line.
func ticks(t *testing.T, out string) []uint32 {
	t.Helper()
	lines := strings.Split(out, "\n")
	var ts []uint32
	for _, l := range lines[:len(lines)-1] { // the last one is unfinished
		if l == tinyguest.CounterStartLine {
			continue
		}
		hex, ok := strings.CutPrefix(l, tinyguest.TickPrefix)
		n, err := strconv.ParseUint(hex, 16, 32)
		if !ok || err != nil || len(hex) != 8 {
			t.Fatalf("console line %q is not a tick", l)
		}
		ts = append(ts, uint32(n))
	}
	return ts
}

// checkCounting fails unless ts go up by tickEvery each: the guest neither
// restarted nor skipped.
func checkCounting(t *testing.T, ts []uint32) {
	t.Helper()
	for i := 1; i < len(ts); i++ {
		if ts[i] != ts[i-1]+tickEvery {
			t.Fatalf("tick %#x follows tick %#x; want steps of %#x (all: %x)", ts[i], ts[i-1], tickEvery, ts)
		}
	}
}

// waitFor polls cond until it holds or patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, patience, what, cond)
}

// waitForWithin is waitFor with its own limit.
func waitForWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running is a VM whose Run is in progress in a goroutine.
type running struct {
	vm   *vmm.VM
	cons *console
	log  *logtest.Hook
	done chan runResult
	// earlier is console output of the VM this one was restored from: a
	// tick line the snapshot cut short is finished on this console.
	earlier string
}

type runResult struct {
	reason vmm.StopReason
	err    error
}

func newLogger() (logrus.FieldLogger, *logtest.Hook) {
	l, hook := logtest.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	return l, hook
}

// start runs v, which writes to cons and logs to hook, and makes sure the
// test does not end with it still running.
func start(t *testing.T, v *vmm.VM, cons *console, hook *logtest.Hook) *running {
	t.Helper()
	r := &running{vm: v, cons: cons, log: hook, done: make(chan runResult, 1)}
	go func() {
		reason, err := v.Run(context.Background())
		r.done <- runResult{reason, err}
	}()
	t.Cleanup(func() {
		v.Stop()
		select {
		case <-r.done:
		case <-time.After(patience):
			t.Errorf("Run did not return %v after Stop", patience)
		}
		v.Close()
		if t.Failed() {
			for _, e := range hook.AllEntries() {
				t.Logf("log: %s %v", e.Message, e.Data)
			}
			t.Logf("console:\n%s", cons.String())
		}
	})
	return r
}

// wait returns what Run returned, failing if it does not return in time.
func (r *running) wait(t *testing.T) runResult {
	t.Helper()
	select {
	case res := <-r.done:
		r.done <- res // for the cleanup
		return res
	case <-time.After(patience):
		t.Fatalf("Run did not return within %v", patience)
	}
	return runResult{}
}

// allTicks returns the ticks this VM and those it was restored from
// printed.
func (r *running) allTicks(t *testing.T) []uint32 {
	t.Helper()
	return ticks(t, r.earlier+r.cons.String())
}

// waitTicks waits until the console shows n more complete ticks than now
// and returns all of them.
func (r *running) waitTicks(t *testing.T, n int) []uint32 {
	t.Helper()
	before := len(r.allTicks(t))
	var ts []uint32
	waitFor(t, fmt.Sprintf("%d ticks", n), func() bool {
		ts = r.allTicks(t)
		return len(ts) >= before+n
	})
	return ts
}

// bootSignals counts the guest's boot-timer writes, as tern logs them.
func (r *running) bootSignals() int {
	n := 0
	for _, e := range r.log.AllEntries() {
		if _, ok := e.Data["boot-time"]; ok {
			n++
		}
	}
	return n
}

// startCounter builds and runs the counter guest in a fresh VM.
func startCounter(t *testing.T) *running {
	t.Helper()
	return startGuest(t, guestRAM, func(dir string) (string, error) {
		return tinyguest.BuildCounter(dir, tinyguest.CounterOptions{TickEvery: tickEvery})
	})
}

// startGuest builds a tiny guest with build and runs it in a fresh
// one-vCPU VM of memory bytes, on this host's /dev/kvm.
func startGuest(t *testing.T, memory uint64, build func(dir string) (string, error)) *running {
	t.Helper()
	v, cons, hook := newGuest(t, memory, build)
	return start(t, v, cons, hook)
}

// newGuest is startGuest's VM before it starts, with its console and log;
// each of with may change the Config first.
func newGuest(t *testing.T, memory uint64, build func(dir string) (string, error), with ...func(*vmm.Config)) (*vmm.VM, *console, *logtest.Hook) {
	t.Helper()
	tinyguest.RequireKVM(t)
	elf, err := build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	cfg := vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: memory, Console: cons, Logger: log}
	for _, w := range with {
		w(&cfg)
	}
	v, err := vmm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v, cons, hook
}

// guestWords opens the full snapshot in dir and returns a reader of the
// 32-bit word at a guest-physical address, locating it through the
// snapshot's own memory description (the memory file is the RAM regions
// back to back).
func guestWords(t *testing.T, dir string) func(gpa uint64) uint32 {
	t.Helper()
	sections, err := snapshot.ReadStateFile(filepath.Join(dir, vmm.SnapshotStateFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewState(sections)
	if err != nil {
		t.Fatal(err)
	}
	var info snapshot.MemoryInfo
	if err := st.GetJSON("memory", &info); err != nil {
		t.Fatal(err)
	}
	mem, err := os.ReadFile(filepath.Join(dir, vmm.SnapshotMemoryFile))
	if err != nil {
		t.Fatal(err)
	}
	return func(gpa uint64) uint32 {
		t.Helper()
		var off uint64
		for _, r := range info.Regions {
			if gpa >= r.GPA && gpa+4 <= r.GPA+r.Size && off+gpa-r.GPA+4 <= uint64(len(mem)) {
				return binary.LittleEndian.Uint32(mem[off+gpa-r.GPA:])
			}
			off += r.Size
		}
		t.Fatalf("guest address %#x is in no RAM region of the snapshot (%+v, %d bytes)", gpa, info.Regions, len(mem))
		return 0
	}
}

// snapshotCounter snapshots the paused VM into a fresh directory and
// returns the directory and the guest's counter as saved there.
func snapshotCounter(t *testing.T, v *vmm.VM) (string, uint32) {
	t.Helper()
	dir := t.TempDir()
	if _, err := v.Snapshot(vmm.SnapshotOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	return dir, guestWords(t, dir)(tinyguest.CounterAddr)
}

func TestCounterGuestTicksAndSignalsBootOnce(t *testing.T) {
	r := startCounter(t)
	ts := r.waitTicks(t, 3)
	checkCounting(t, ts)
	if ts[0] != tickEvery {
		t.Errorf("first tick is %#x, want %#x: the counter starts at 0", ts[0], tickEvery)
	}
	out := r.cons.String()
	if !strings.HasPrefix(out, tinyguest.CounterStartLine+"\n") {
		t.Errorf("console does not start with %q: %q", tinyguest.CounterStartLine, out)
	}
	if n := r.bootSignals(); n != 1 {
		t.Errorf("tern logged %d boot-time signals, want 1", n)
	}
	r.vm.Stop()
	if res := r.wait(t); res.reason != vmm.StopRequested || res.err != nil {
		t.Errorf("Run after Stop = %v, %v; want %v, nil", res.reason, res.err, vmm.StopRequested)
	}
}

func TestPauseStopsTheGuestAndResumeContinuesIt(t *testing.T) {
	r := startCounter(t)
	r.waitTicks(t, 2)

	if err := r.vm.Pause(); err != nil {
		t.Fatal(err)
	}
	if !r.vm.Paused() {
		t.Error("Paused() is false after Pause")
	}
	held := r.cons.String()
	_, c1 := snapshotCounter(t, r.vm)
	time.Sleep(quiet)
	if now := r.cons.String(); now != held {
		t.Fatalf("the paused guest printed %q", strings.TrimPrefix(now, held))
	}
	if _, c2 := snapshotCounter(t, r.vm); c2 != c1 {
		t.Fatalf("the paused guest's counter moved from %#x to %#x", c1, c2)
	}

	if err := r.vm.Resume(); err != nil {
		t.Fatal(err)
	}
	if r.vm.Paused() {
		t.Error("Paused() is true after Resume")
	}
	ts := r.waitTicks(t, 2)
	checkCounting(t, ts)
	if last := ts[len(ts)-1]; last <= c1 {
		t.Errorf("after Resume the guest printed tick %#x, not past the paused counter %#x", last, c1)
	}
	if strings.Count(r.cons.String(), tinyguest.CounterStartLine) != 1 {
		t.Error("the guest started again after Resume")
	}
}

func TestGuestMemoryHoldsTheCounter(t *testing.T) {
	r := startCounter(t)
	r.waitTicks(t, 2)
	if err := r.vm.Pause(); err != nil {
		t.Fatal(err)
	}
	ts := ticks(t, r.cons.String())
	_, c := snapshotCounter(t, r.vm)
	// The guest prints the counter right after the increment that makes
	// it a multiple of tickEvery; a pause may cut that line short, so
	// the counter is at most two intervals past the last whole tick.
	last := ts[len(ts)-1]
	if c < last || c >= last+2*tickEvery {
		t.Errorf("counter in guest memory at %#x is %#x; the console's last tick is %#x", tinyguest.CounterAddr, c, last)
	}
}

func TestSnapshotRestoreContinuesTheGuest(t *testing.T) {
	r := startCounter(t)
	r.waitTicks(t, 2)
	if err := r.vm.Pause(); err != nil {
		t.Fatal(err)
	}
	dir, saved := snapshotCounter(t, r.vm)
	r.vm.Stop()
	if res := r.wait(t); res.reason != vmm.StopRequested || res.err != nil {
		t.Fatalf("Run after Pause, Snapshot, Stop = %v, %v; want %v, nil", res.reason, res.err, vmm.StopRequested)
	}
	before := r.cons.String()
	beforeTicks := ticks(t, before)

	cons := &console{}
	log, hook := newLogger()
	t0 := time.Now()
	v, err := vmm.Restore(vmm.RestoreOptions{Dir: dir, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Restore took %v", time.Since(t0))
	rr := start(t, v, cons, hook)
	// Were the first VM stopped in the middle of a tick line, the
	// restored one finishes it: the two consoles read on as one.
	rr.earlier = before
	all := rr.waitTicks(t, 2)
	checkCounting(t, all)
	first, last := all[len(beforeTicks)], beforeTicks[len(beforeTicks)-1]
	if first <= last || first < saved {
		t.Errorf("restored guest's first tick %#x is not past the last tick before the snapshot %#x (saved counter %#x)", first, last, saved)
	}
	if strings.Contains(cons.String(), tinyguest.CounterStartLine) || rr.bootSignals() != 0 {
		t.Error("the restored guest booted again instead of going on")
	}
}

func TestHelloGuestPowersOff(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	t0 := time.Now()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, v, cons, hook)
	res := r.wait(t)
	t.Logf("New to poweroff took %v", time.Since(t0))
	if res.reason != vmm.StopPoweroff || res.err != nil {
		t.Errorf("Run = %v, %v; want %v, nil", res.reason, res.err, vmm.StopPoweroff)
	}
	if got := cons.String(); got != tinyguest.HelloLine+"\n" {
		t.Errorf("console = %q, want %q", got, tinyguest.HelloLine+"\n")
	}
	if n := r.bootSignals(); n != 1 {
		t.Errorf("tern logged %d boot-time signals, want 1", n)
	}
}

func TestDirtyGuestRewritesEveryPageEachPass(t *testing.T) {
	r := startGuest(t, guestRAM, func(dir string) (string, error) {
		return tinyguest.BuildDirty(dir, tinyguest.DirtyOptions{Start: 16 << 20, MiB: 16})
	})
	v, cons := r.vm, r.cons
	passes := func() []uint32 {
		var ps []uint32
		lines := strings.Split(cons.String(), "\n")
		for _, l := range lines[:len(lines)-1] {
			if hex, ok := strings.CutPrefix(l, tinyguest.PassPrefix); ok {
				n, err := strconv.ParseUint(hex, 16, 32)
				if err != nil {
					t.Fatalf("console line %q", l)
				}
				ps = append(ps, uint32(n))
			} else if l != tinyguest.DirtyStartLine {
				t.Fatalf("console line %q is neither a pass nor the start line", l)
			}
		}
		return ps
	}
	var ps []uint32
	waitFor(t, "3 passes", func() bool { ps = passes(); return len(ps) >= 3 })
	for i, p := range ps {
		if p != uint32(i+1) {
			t.Fatalf("passes %v do not count 1, 2, 3...", ps)
		}
	}
	if err := v.Pause(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := v.Snapshot(vmm.SnapshotOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	word := guestWords(t, dir)
	// The guest stores the pass count into the pages in order, so a pause
	// mid-pass leaves the count in a prefix of the range and the one
	// before in the rest.
	pass := word(tinyguest.PassAddr)
	if ps = passes(); pass < ps[len(ps)-1] || pass > ps[len(ps)-1]+1 {
		t.Fatalf("pass count in memory is %d, the console's last pass %d", pass, ps[len(ps)-1])
	}
	want := pass
	for a := uint64(16 << 20); a < 32<<20; a += 4096 {
		switch got := word(a); {
		case got == want:
		case got == pass-1 && want == pass:
			want = pass - 1
		default:
			t.Fatalf("page %#x holds %d during pass %d (want %d)", a, got, pass, want)
		}
	}
}

// A guest halted with interrupts off sleeps in the host kernel; a pause
// must still reach it (the kick interrupts the halt), and it migrates.
func TestHaltedGuestPausesAndMigrates(t *testing.T) {
	r := startGuest(t, guestRAM, tinyguest.BuildHalt)
	v, cons := r.vm, r.cons
	waitFor(t, "the halt line", func() bool { return cons.String() == tinyguest.HaltLine+"\n" })
	if err := v.Pause(); err != nil {
		t.Fatalf("Pause of a halted guest: %v", err)
	}
	if err := v.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	m := migrateOver(t, r, migrate.SendOptions{}, vmm.ReceiveOptions{}, nil)
	if m.err != nil || m.recvErr != nil {
		t.Fatalf("migration of a halted guest: send %v, receive %v", m.err, m.recvErr)
	}
	if res := r.wait(t); res.reason != vmm.StopMigrated {
		t.Errorf("source stopped with %v, want %v", res.reason, vmm.StopMigrated)
	}
	if err := m.dst.vm.Pause(); err != nil {
		t.Errorf("Pause at the destination: %v", err)
	}
	if got := m.dst.cons.String(); got != "" {
		t.Errorf("the halted guest printed %q at the destination: it ran again from its start?", got)
	}
}
