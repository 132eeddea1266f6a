package vmm_test

// Live migration between two VMs of this process on this host's real
// /dev/kvm, over a real Unix socket, with the tiny guests: the guest moves
// and goes on counting exactly where it was, and every failure leaves it
// running at the source.

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// migration is one migration between a running source and a receiving VM.
type migration struct {
	status  migrate.Status
	err     error       // what Migrate returned
	recvErr error       // what Receive returned
	dst     *running    // the received VM, running (nil if Receive failed)
	cancel  func() bool // cancels the migration while it runs
}

// migrateOver migrates src to a VM received in this process over a Unix
// socket. during, if set, runs once the migration is under way.
func migrateOver(t *testing.T, src *running, sopts migrate.SendOptions, ropts vmm.ReceiveOptions, during func()) migration {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "migration.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	ropts.Console, ropts.Logger = cons, log
	type received struct {
		vm  *vmm.VM
		err error
	}
	got := make(chan received, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			got <- received{nil, err}
			return
		}
		defer c.Close()
		vm, err := vmm.Receive(context.Background(), c, ropts)
		got <- received{vm, err}
	}()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if during != nil {
		go func() {
			waitFor(t, "the migration to start", func() bool {
				st, err := src.vm.MigrationStatus()
				return err == nil && st.Phase == migrate.PhasePreCopy && st.BytesTransferred > 0
			})
			during()
		}()
	}
	var m migration
	m.status, m.err = src.vm.Migrate(context.Background(), conn, sopts)
	conn.Close()
	select {
	case r := <-got:
		m.recvErr = r.err
		if r.vm != nil {
			m.dst = start(t, r.vm, cons, hook)
			m.dst.earlier = src.cons.String()
		}
	case <-time.After(patience):
		t.Fatalf("Receive did not return within %v of Migrate", patience)
	}
	return m
}

func TestMigrateMovesTheRunningGuest(t *testing.T) {
	src := startCounter(t)
	before := src.waitTicks(t, 3)
	m := migrateOver(t, src, migrate.SendOptions{}, vmm.ReceiveOptions{}, nil)
	if m.err != nil || m.recvErr != nil {
		t.Fatalf("migration failed: send %v, receive %v", m.err, m.recvErr)
	}
	if m.status.Phase != migrate.PhaseCompleted || m.status.DowntimeMS <= 0 || m.status.TotalTimeMS < m.status.DowntimeMS {
		t.Errorf("status %+v: want completed with a downtime within the total time", m.status)
	}
	if m.status.PagesSent == 0 || m.status.BytesTransferred < m.status.PagesSent*4096 {
		t.Errorf("status %+v: the guest's pages were not sent", m.status)
	}
	// Pages the counter guest never touched are not sent at all.
	if m.status.BytesTransferred >= guestRAM/2 {
		t.Errorf("sent %d bytes of a %d-byte guest that touched a few pages", m.status.BytesTransferred, guestRAM)
	}
	if res := src.wait(t); res.reason != vmm.StopMigrated || res.err != nil {
		t.Errorf("source Run returned %v, %v; want %v", res.reason, res.err, vmm.StopMigrated)
	}
	after := m.dst.waitTicks(t, 3)
	if len(after) <= len(before) {
		t.Fatalf("no ticks after the migration")
	}
	checkCounting(t, after)
	if strings.Contains(m.dst.cons.String(), tinyguest.CounterStartLine) || m.dst.bootSignals() != 0 {
		t.Errorf("the guest started again at the destination:\n%s", m.dst.cons.String())
	}
	t.Logf("migrated: %d rounds, %d bytes, downtime %.2f ms, total %.1f ms", m.status.Round, m.status.BytesTransferred, m.status.DowntimeMS, m.status.TotalTimeMS)
}

// startDirty runs the dirty guest over mib MiB in a fresh VM.
func startDirty(t *testing.T, mib uint32) *running {
	t.Helper()
	return startGuest(t, 64<<20, func(dir string) (string, error) {
		return tinyguest.BuildDirty(dir, tinyguest.DirtyOptions{MiB: mib})
	})
}

// passes returns the pass numbers of the complete pass lines in out,
// checking that they go up by one.
func passes(t *testing.T, out string) []uint64 {
	t.Helper()
	lines := strings.Split(out, "\n")
	var ps []uint64
	for _, l := range lines[:len(lines)-1] {
		hex, ok := strings.CutPrefix(l, tinyguest.PassPrefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			t.Fatalf("console line %q is not a pass", l)
		}
		if len(ps) > 0 && n != ps[len(ps)-1]+1 {
			t.Fatalf("pass %d follows pass %d", n, ps[len(ps)-1])
		}
		ps = append(ps, n)
	}
	return ps
}

// waitPasses waits until the console (after what came before) shows n
// more passes than now.
func (r *running) waitPasses(t *testing.T, n int) []uint64 {
	t.Helper()
	before := len(passes(t, r.earlier+r.cons.String()))
	var ps []uint64
	waitFor(t, "passes of the dirty guest", func() bool {
		ps = passes(t, r.earlier+r.cons.String())
		return len(ps) >= before+n
	})
	return ps
}

// A guest rewriting its memory while it is copied still arrives whole:
// the dirty log makes later rounds send what changed, and the passes go on
// at the destination without a gap.
func TestMigrateDirtyingGuest(t *testing.T) {
	src := startDirty(t, 16)
	src.waitPasses(t, 3)
	m := migrateOver(t, src, migrate.SendOptions{Timeout: 30 * time.Second}, vmm.ReceiveOptions{}, nil)
	if m.err != nil || m.recvErr != nil {
		t.Fatalf("migration failed: send %v, receive %v", m.err, m.recvErr)
	}
	m.dst.waitPasses(t, 5)
	t.Logf("dirtying guest migrated: %d rounds, %d bytes, throttle %d%%, downtime %.2f ms, total %.1f ms",
		m.status.Round, m.status.BytesTransferred, m.status.ThrottlePercent, m.status.DowntimeMS, m.status.TotalTimeMS)
}

// A link slower than the guest dirties memory converges only by slowing
// the guest (auto-converge), and the throttle is reported.
func TestMigrateThrottlesAGuestThatOutrunsTheLink(t *testing.T) {
	src := startDirty(t, 16)
	src.waitPasses(t, 3)
	m := migrateOver(t, src, migrate.SendOptions{Bandwidth: 64 << 20, Downtime: 20 * time.Millisecond, Timeout: 60 * time.Second}, vmm.ReceiveOptions{}, nil)
	if m.err != nil || m.recvErr != nil {
		t.Fatalf("migration failed: send %v, receive %v (status %+v)", m.err, m.recvErr, m.status)
	}
	if m.status.ThrottlePercent == 0 {
		t.Errorf("converged without throttling a guest that dirties 16 MiB every few ms over a 64 MiB/s link: %+v", m.status)
	}
	m.dst.waitPasses(t, 3)
	t.Logf("throttled migration: %d rounds, throttle %d%%, downtime %.2f ms, total %.1f ms",
		m.status.Round, m.status.ThrottlePercent, m.status.DowntimeMS, m.status.TotalTimeMS)
}

// checkRunsOn fails unless src, after a failed migration, is neither
// paused nor stopped and goes on counting without a gap.
func checkRunsOn(t *testing.T, src *running) {
	t.Helper()
	if src.vm.Paused() {
		t.Fatal("the source is paused after a failed migration")
	}
	select {
	case res := <-src.done:
		src.done <- res
		t.Fatalf("the source stopped: %v %v", res.reason, res.err)
	default:
	}
}

func TestMigrateRefusedByTheDestinationLeavesTheGuestRunning(t *testing.T) {
	src := startCounter(t)
	src.waitTicks(t, 2)
	// An override naming a disk the guest does not have: the destination
	// refuses in the handshake.
	m := migrateOver(t, src, migrate.SendOptions{}, vmm.ReceiveOptions{DiskPaths: map[string]string{"/srv/a.img": "/srv/b.img"}}, nil)
	if !errors.Is(m.err, migrate.ErrRefused) || !strings.Contains(m.err.Error(), "/srv/a.img") {
		t.Errorf("Migrate: %v; want ErrRefused naming the override", m.err)
	}
	if m.recvErr == nil || m.dst != nil {
		t.Errorf("Receive: %v, VM %v; want an error and no VM", m.recvErr, m.dst)
	}
	if m.status.Phase != migrate.PhaseFailed || m.status.PagesSent != 0 {
		t.Errorf("status %+v: want failed with no page sent", m.status)
	}
	checkRunsOn(t, src)
	checkCounting(t, src.waitTicks(t, 3))
}

func TestMigrateCancelledLeavesTheGuestRunning(t *testing.T) {
	src := startDirty(t, 16)
	src.waitPasses(t, 2)
	// 16 MiB at 2 MiB/s: seconds to go when the cancel comes.
	m := migrateOver(t, src, migrate.SendOptions{Bandwidth: 2 << 20}, vmm.ReceiveOptions{}, func() {
		if err := src.vm.CancelMigration(); err != nil {
			t.Errorf("CancelMigration: %v", err)
		}
	})
	if !errors.Is(m.err, migrate.ErrCancelled) || m.status.Phase != migrate.PhaseCancelled {
		t.Errorf("Migrate: %v, phase %s; want ErrCancelled", m.err, m.status.Phase)
	}
	if m.recvErr == nil || m.dst != nil {
		t.Errorf("Receive: %v; want an error and no VM", m.recvErr)
	}
	checkRunsOn(t, src)
	src.waitPasses(t, 3)
}

// A destination that goes away mid-transfer (killed, or its link cut)
// fails the migration at the source, which runs on.
func TestMigrateDestinationGoneLeavesTheGuestRunning(t *testing.T) {
	src := startDirty(t, 16)
	src.waitPasses(t, 2)
	sock := filepath.Join(t.TempDir(), "gone.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		// Accept like a destination would, then vanish mid-stream: a
		// real receiver answers the handshake, so do it with one.
		ropts := vmm.ReceiveOptions{}
		cut := &cutAfter{Conn: c, left: 4 << 20}
		vm, err := vmm.Receive(context.Background(), cut, ropts)
		if err == nil {
			vm.Stop()
			vm.Close()
			t.Error("the receiver of a cut stream started the guest")
		}
		c.Close()
	}()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := src.vm.Migrate(context.Background(), conn, migrate.SendOptions{Bandwidth: 8 << 20})
	if err == nil || st.Phase != migrate.PhaseFailed {
		t.Errorf("Migrate to a vanished destination: %v, phase %s; want failed", err, st.Phase)
	}
	checkRunsOn(t, src)
	src.waitPasses(t, 3)
}

// cutAfter is a connection that breaks after left bytes were read.
type cutAfter struct {
	net.Conn
	left int
}

func (c *cutAfter) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.Conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	n, err := c.Conn.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}
