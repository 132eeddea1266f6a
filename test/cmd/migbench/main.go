// Command migbench measures tern's live migration on this machine's own
// /dev/kvm, side by side with QEMU's and with a plain TCP copy (the
// floor), over loopback TCP:
//
//   - migrate-idle: a 2 GiB guest (the halt tiny guest: halted with
//     interrupts off, its vCPU asleep in the host kernel) holding
//     512 MiB of random data, loaded as tern's --initrd and with QEMU's
//     -device loader at the same address; total time, downtime and bytes
//     sent, min and median of interleaved runs, and the ratios to the
//     floor (the same 512 MiB sent into freshly mapped memory) and to
//     QEMU.
//   - migrate-dirty: a 1 GiB guest writing one word into every 4 KiB page
//     of 256 MiB pass after pass (the dirty tiny guest), with each
//     monitor's default downtime target and QEMU's bandwidth limit
//     lifted; total time, downtime, rounds, throttle, and proof that the
//     guest goes on at the destination (new pass lines on its console).
//
// On a PVM-backed /dev/kvm the guests' ring-0 code runs in KVM's
// instruction emulator, which does not matter here: what is measured is
// the monitors' copying, tracking and switching, not the guest.
//
// It prints BENCH lines (values are medians, "-min" the smallest run),
// and a BENCH-ERROR line naming the step for anything that failed, then
// exits 1. Every process it starts is stopped on the way out, every wait
// is bounded, and everything it writes goes to a temporary directory.
//
//	go run ./test/cmd/migbench [-runs 3] [-tern bin/tern]
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/ternvm/tern/test/benchproc"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/test/tinyguest"
)

// migResult is one migration's figures, as either monitor reports them.
type migResult struct {
	Total    time.Duration
	Downtime time.Duration
	Sent     int64 // bytes on the wire
	Rounds   int64 // tern: pre-copy rounds; QEMU: dirty-sync-count
	Throttle int64 // percent, at the end; noThrottle if not reported
	// Wall is the same migration timed by the bench from outside: from
	// starting `tern migrate send` to its exit, or from QMP migrate to
	// query-migrate answering completed (polled every 10 ms). It checks
	// the monitors' own clocks, which start and stop at different points.
	Wall time.Duration
	Note string
}

// noThrottle marks a throttle the monitor did not report.
const noThrottle = -1

// The idle guest's shape.
const (
	idleMemory = "2G"
	dataSize   = 512 << 20
)

// dataAt is where tern puts a 512 MiB initrd for a PVH ELF in 2 GiB:
// as high as it goes, ending at the kernel's initrd ceiling
// (boot.DefaultInitrdAddrMax, as the tiny guests declare none). QEMU's
// loader puts the same bytes at the same place.
const dataAt = (boot.DefaultInitrdAddrMax + 1 - dataSize) &^ 0xfff

// The dirtying guest's shape.
const (
	dirtyMemory = "1G"
	dirtyMiB    = 256
)

func main() {
	os.Exit(run())
}

// bench is one run's settings and state.
type bench struct {
	ps     *benchproc.Procs
	dir    string
	tern   string
	ternOK error // why tern cannot migrate, if it cannot
	failed bool
}

func run() int {
	runs := flag.Int("runs", 3, "interleaved runs of migrate-idle")
	dirtyRuns := flag.Int("dirty-runs", 1, "runs of migrate-dirty")
	ternBin := flag.String("tern", "", "the tern binary (default: build ./cmd/tern into the temporary directory)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up on the whole bench after this")
	flag.Parse()
	if *runs < 1 || *dirtyRuns < 0 {
		fmt.Println("BENCH-ERROR migbench: -runs must be at least 1 and -dirty-runs not negative")
		return 2
	}

	sess, err := benchproc.NewSession("migbench", *timeout)
	if err != nil {
		fmt.Println("BENCH-ERROR migbench: " + benchproc.OneLine(err))
		return 1
	}
	defer sess.Close()
	ctx, dir := sess.Ctx, sess.Dir
	b := &bench{ps: sess.Procs, dir: dir}

	be := benchproc.Announce("migbench")
	if be.Kind == kvm.BackendAbsent {
		fmt.Println("BENCH-ERROR migbench: no /dev/kvm: " + be.Detail)
		return 1
	}

	if err := b.prepare(ctx, *ternBin); err != nil {
		fmt.Println("BENCH-ERROR migbench: " + benchproc.OneLine(err))
		return 1
	}
	// Halted, as the idle guest of the comparison is: a spinning one
	// would take one of this machine's two cores from the monitors.
	halted, err := tinyguest.BuildHalt(dir)
	if err != nil {
		fmt.Println("BENCH-ERROR migbench: build the halt guest: " + benchproc.OneLine(err))
		return 1
	}
	dirty, err := tinyguest.BuildDirty(dir, tinyguest.DirtyOptions{MiB: dirtyMiB})
	if err != nil {
		fmt.Println("BENCH-ERROR migbench: build the dirty guest: " + benchproc.OneLine(err))
		return 1
	}
	dataPath := filepath.Join(dir, "data.bin")
	data, err := writeRandom(dataPath, dataSize)
	if err != nil {
		fmt.Println("BENCH-ERROR migbench: " + benchproc.OneLine(err))
		return 1
	}

	b.idle(ctx, *runs, halted, dataPath, data)
	data = nil
	if *dirtyRuns > 0 {
		b.dirty(ctx, *dirtyRuns, dirty)
	}
	if b.failed {
		return 1
	}
	return 0
}

// prepare finds or builds tern and checks it can migrate, and checks QEMU
// is there.
func (b *bench) prepare(ctx context.Context, ternBin string) error {
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return fmt.Errorf("%s not found (make deps installs it): %w", qemuBinary, err)
	}
	abs, err := benchproc.Tern(ctx, b.dir, ternBin)
	if err != nil {
		return err
	}
	b.tern = abs
	b.ternOK = ternHasMigrate(ctx, abs)
	return nil
}

// idle runs migrate-idle: runs rounds of tern, QEMU and the floor in
// turn, so that a slow spell of this shared machine hits all three.
func (b *bench) idle(ctx context.Context, runs int, guest, dataPath string, data []byte) {
	const part = "migrate-idle"
	fmt.Printf("migbench: %s: halted guest in %s RAM with %d MiB of random data at %#x; source pages warm, destination pages fresh; %d runs\n",
		part, idleMemory, dataSize>>20, dataAt, runs)
	var tern, qemu []migResult
	var floor []time.Duration
	ternErr, qemuErr, floorErr := b.ternOK, error(nil), error(nil)
	if ternErr != nil {
		b.fail(part+" tern", ternErr)
	}
	ready := func(p *benchproc.Proc, console string) error {
		return benchproc.WaitFile(ctx, p, console, p.Name+"'s guest to start", 90*time.Second, consoleHas(tinyguest.HaltLine))
	}
	for i := 0; i < runs && ctx.Err() == nil; i++ {
		if ternErr == nil && ctx.Err() == nil {
			r, err := runTernMigration(ctx, b.ps, b.dir, part, b.tern,
				ternSpec{kernel: guest, memory: idleMemory, initrd: dataPath}, ready, nil, 2*time.Minute)
			if err != nil {
				ternErr = err
				b.fail(part+" tern", err)
			} else {
				tern = append(tern, r)
			}
		}
		if qemuErr == nil && ctx.Err() == nil {
			r, err := runQEMUMigration(ctx, b.ps, b.dir, part,
				qemuSpec{kernel: guest, memory: idleMemory, loader: dataPath, loaderAt: dataAt},
				qemuSpec{kernel: guest, memory: idleMemory},
				func(v *qemuVM) error { return ready(v.p, v.serial) }, nil, 2*time.Minute)
			if err != nil {
				qemuErr = err
				b.fail(part+" qemu", err)
			} else {
				qemu = append(qemu, r)
			}
		}
		if floorErr == nil && ctx.Err() == nil {
			d, err := floorCopy(ctx, data, time.Minute)
			if err != nil {
				floorErr = err
				b.fail(part+" floor", err)
			} else {
				floor = append(floor, d)
			}
		}
	}
	if ctx.Err() != nil {
		b.fail(part, fmt.Errorf("stopped: %w", ctx.Err()))
	}
	printResults(part, "tern", tern, false)
	printResults(part, "qemu", qemu, false)
	if len(floor) > 0 {
		mn, med := minMedian(floor)
		fmt.Printf("BENCH %s floor runs=%d total-ms=%s total-ms-min=%s sent-bytes=%d\n", part, len(floor), ms(med), ms(mn), dataSize)
	}
	var ratios []string
	tm, qm, fm := medianTotal(tern), medianTotal(qemu), time.Duration(0)
	if len(floor) > 0 {
		_, fm = minMedian(floor)
	}
	if tm > 0 && fm > 0 {
		ratios = append(ratios, fmt.Sprintf("tern/floor=%.2f", float64(tm)/float64(fm)))
	}
	if tm > 0 && qm > 0 {
		ratios = append(ratios, fmt.Sprintf("tern/qemu=%.2f", float64(tm)/float64(qm)))
	}
	if qm > 0 && fm > 0 {
		ratios = append(ratios, fmt.Sprintf("qemu/floor=%.2f", float64(qm)/float64(fm)))
	}
	if len(ratios) > 0 {
		fmt.Printf("BENCH %s ratio %s (median total times)\n", part, strings.Join(ratios, " "))
	}
}

// dirty runs migrate-dirty with each monitor's defaults.
func (b *bench) dirty(ctx context.Context, runs int, guest string) {
	const part = "migrate-dirty"
	fmt.Printf("migbench: %s: dirty guest in %s RAM writing every 4 KiB page of %d MiB per pass; migration starts after pass 2; default downtime targets (QEMU 300 ms), QEMU bandwidth unlimited\n",
		part, dirtyMemory, dirtyMiB)
	var tern, qemu []migResult
	ternErr, qemuErr := b.ternOK, error(nil)
	if ternErr != nil {
		b.fail(part+" tern", ternErr)
	}
	// Two passes: every page of the range has been written, so the first
	// round has all of it to send.
	ready := func(p *benchproc.Proc, console string) error {
		return benchproc.WaitFile(ctx, p, console, p.Name+"'s guest to finish pass 2", 90*time.Second, func(b []byte) bool {
			n, ok := lastPass(b)
			return ok && n >= 2
		})
	}
	// The destination runs the guest on: its console, fresh at the
	// switch, shows a pass beyond the last one the source printed.
	goesOn := func(srcConsole []byte, p *benchproc.Proc, console string) (string, error) {
		last, _ := lastPass(srcConsole)
		var now uint32
		err := benchproc.WaitFile(ctx, p, console, fmt.Sprintf("%s's guest to print a pass after %#x", p.Name, last), 30*time.Second, func(b []byte) bool {
			n, ok := lastPass(b)
			now = n
			return ok && n > last
		})
		return fmt.Sprintf("source-last-pass=%d dest-pass=%d", last, now), err
	}
	for i := 0; i < runs && ctx.Err() == nil; i++ {
		if ternErr == nil && ctx.Err() == nil {
			var note string
			r, err := runTernMigration(ctx, b.ps, b.dir, part, b.tern,
				ternSpec{kernel: guest, memory: dirtyMemory}, ready,
				func(src []byte, p *benchproc.Proc, console string) (err error) {
					note, err = goesOn(src, p, console)
					return err
				}, 3*time.Minute)
			r.Note = note
			if err != nil {
				ternErr = err
				b.fail(part+" tern", err)
			} else {
				tern = append(tern, r)
			}
		}
		if qemuErr == nil && ctx.Err() == nil {
			var note string
			r, err := runQEMUMigration(ctx, b.ps, b.dir, part,
				qemuSpec{kernel: guest, memory: dirtyMemory}, qemuSpec{kernel: guest, memory: dirtyMemory},
				func(v *qemuVM) error { return ready(v.p, v.serial) },
				func(src []byte, v *qemuVM) (err error) {
					note, err = goesOn(src, v.p, v.serial)
					return err
				}, 3*time.Minute)
			r.Note = note
			if err != nil {
				qemuErr = err
				b.fail(part+" qemu", err)
			} else {
				qemu = append(qemu, r)
			}
		}
	}
	if ctx.Err() != nil {
		b.fail(part, fmt.Errorf("stopped: %w", ctx.Err()))
	}
	printResults(part, "tern", tern, true)
	printResults(part, "qemu", qemu, true)
}

// fail prints the BENCH-ERROR line for what of part went wrong.
func (b *bench) fail(part string, err error) {
	b.failed = true
	fmt.Printf("BENCH-ERROR %s: %s\n", part, benchproc.OneLine(err))
}

// printResults prints one monitor's line of a part; dirty adds rounds,
// throttle and the note on the destination's guest.
func printResults(part, who string, rs []migResult, dirty bool) {
	if len(rs) == 0 {
		return
	}
	var totals, downs, walls []time.Duration
	var sent, rounds, throttle []int64
	for _, r := range rs {
		totals = append(totals, r.Total)
		downs = append(downs, r.Downtime)
		walls = append(walls, r.Wall)
		sent = append(sent, r.Sent)
		rounds = append(rounds, r.Rounds)
		throttle = append(throttle, r.Throttle)
	}
	tmin, tmed := minMedian(totals)
	dmin, dmed := minMedian(downs)
	_, smed := minMedian(sent)
	_, wmed := minMedian(walls)
	line := fmt.Sprintf("BENCH %s %s runs=%d total-ms=%s total-ms-min=%s downtime-ms=%s downtime-ms-min=%s sent-bytes=%d wall-ms=%s",
		part, who, len(rs), ms(tmed), ms(tmin), ms(dmed), ms(dmin), smed, ms(wmed))
	if dirty {
		_, rmed := minMedian(rounds)
		_, thmed := minMedian(throttle)
		th := "not-reported"
		if thmed != noThrottle {
			th = fmt.Sprint(thmed)
		}
		line += fmt.Sprintf(" rounds=%d throttle-pct=%s %s", rmed, th, rs[len(rs)-1].Note)
	}
	fmt.Println(line)
}

func medianTotal(rs []migResult) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	var ts []time.Duration
	for _, r := range rs {
		ts = append(ts, r.Total)
	}
	_, med := minMedian(ts)
	return med
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

// writeRandom writes n random bytes to path and returns them: the file
// is the guest's data, the bytes the floor's. Random, so that neither
// monitor can send a page as a zero flag or compress it.
func writeRandom(path string, n int) ([]byte, error) {
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'t', 'e', 'r', 'n'})
	r.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("write the guest's data: %w", err)
	}
	return data, nil
}
