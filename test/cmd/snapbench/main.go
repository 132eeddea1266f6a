// Command snapbench measures tern's snapshots on this machine's own
// /dev/kvm, each against the figure that says what it should cost:
//
//   - idle: a full snapshot of a 2 GiB halt guest that touched under a
//     MiB; tern reads only the pages the kernel says exist, so this
//     should cost milliseconds, not a read of 2 GiB.
//   - touched: a full snapshot of a 2 GiB dirty guest that has written
//     every page of 512 MiB, beside writing 512 MiB to a fresh file in
//     the same directory (from 512 MiB of distinct memory, 4 MiB writes,
//     fsync, rename, fsync of the directory), once through the page
//     cache (a plain write: the ratio's reference, at most 1.25 the
//     goal) and once with O_DIRECT, as tern writes its memory file where
//     the file system takes it. Each run's figures are printed. The plain
//     write gets just-freed page cache: before it (and before tern's
//     snapshot), 512 MiB are written to a scratch file and deleted,
//     untimed. On the development machines (themselves guests that report
//     free pages to their host, virtio-balloon free page reporting)
//     writing into page cache made of never-used or long-freed pages
//     costs four times what writing into just-freed ones does (dd of 512
//     MiB: 1.3-1.6 s against 0.34 s); through the page cache tern's runs
//     took 0.36 s or 1-2 s by which it got, which is why it writes
//     around the page cache.
//   - diff: diff snapshots of dirty guests rewriting 16, 64 and 256 MiB
//     (2 GiB RAM, dirty-page tracking on), each taken after a full one
//     and one more pass of the guest: the time per MiB changed should
//     stay flat as the change grows.
//
// Times are tern's own ("took", from its API's answer), from the pause
// to the state file renamed into place. QEMU is not beside these: the
// Debian QEMU (7.2) saves a guest only through a migration to a pipe
// (exec:), a different measure.
//
// It prints BENCH lines (values are medians, "-min" the smallest run) and
// a BENCH-ERROR line for anything that failed, then exits 1.
//
//	go run ./test/cmd/snapbench [-runs 5] [-tern bin/tern]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/test/benchproc"
	"github.com/ternvm/tern/test/tinyguest"
	"golang.org/x/sys/unix"
)

const (
	guestMemory = "2G"
	touchedMiB  = 512
	// chunk is the size of each write of the reference file, the batch
	// tern's memory writer uses too.
	chunk = 4 << 20
)

var diffMiBs = []uint32{16, 64, 256}

type bench struct {
	ps     *benchproc.Procs
	dir    string
	tern   string
	failed bool
}

func main() { os.Exit(run()) }

func run() int {
	runs := flag.Int("runs", 5, "snapshots per measure")
	ternBin := flag.String("tern", "", "the tern binary (default: build ./cmd/tern into the temporary directory)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up on the whole bench after this")
	only := flag.String("only", "idle,touched,diff", "the measures to run, comma-separated")
	flag.Parse()
	if *runs < 1 {
		fmt.Println("BENCH-ERROR snapbench: -runs must be at least 1")
		return 2
	}
	sess, err := benchproc.NewSession("snapbench", *timeout)
	if err != nil {
		fmt.Println("BENCH-ERROR snapbench: " + benchproc.OneLine(err))
		return 1
	}
	defer sess.Close()
	ctx, dir := sess.Ctx, sess.Dir
	b := &bench{ps: sess.Procs, dir: dir}

	if be := benchproc.Announce("snapbench"); be.Kind == kvm.BackendAbsent {
		fmt.Println("BENCH-ERROR snapbench: no /dev/kvm: " + be.Detail)
		return 1
	}
	if b.tern, err = benchproc.Tern(ctx, dir, *ternBin); err != nil {
		fmt.Println("BENCH-ERROR snapbench: " + benchproc.OneLine(err))
		return 1
	}
	fmt.Printf("snapbench: snapshots in %s (the file system of $TMPDIR)\n", dir)
	parts := map[string]func(context.Context, int){"idle": b.idle, "touched": b.touched, "diff": b.diff}
	for _, name := range strings.Split(*only, ",") {
		part, ok := parts[name]
		if !ok {
			fmt.Printf("BENCH-ERROR snapbench: -only: no measure %q (idle, touched, diff)\n", name)
			return 2
		}
		part(ctx, *runs)
	}
	if b.failed {
		return 1
	}
	return 0
}

func (b *bench) fail(part string, err error) {
	b.failed = true
	fmt.Printf("BENCH-ERROR %s: %s\n", part, benchproc.OneLine(err))
}

// guest is one running tern with its API socket and console file.
type guest struct {
	p       *benchproc.Proc
	sock    string
	console string
}

func (b *bench) start(ctx context.Context, name, kernel string, extra ...string) (*guest, error) {
	g := &guest{sock: filepath.Join(b.dir, name+".sock"), console: filepath.Join(b.dir, name+".console")}
	argv := append([]string{b.tern, "run", "--kernel", kernel, "--pvh", "--memory", guestMemory,
		"--console", g.console, "--api-socket", g.sock}, extra...)
	p, err := b.ps.Start(name, filepath.Join(b.dir, name+".log"), nil, argv...)
	if err != nil {
		return nil, err
	}
	g.p = p
	return g, nil
}

// waitLine waits for the guest's console to hold line.
func (g *guest) waitLine(ctx context.Context, line string, limit time.Duration) error {
	return benchproc.WaitFile(ctx, g.p, g.console, fmt.Sprintf("%q on its console", line), limit, func(b []byte) bool {
		return bytes.Contains(b, []byte(line))
	})
}

var passLine = regexp.MustCompile(tinyguest.PassPrefix + `([0-9a-f]{8})`)

// lastPass is the highest pass count on the dirty guest's console.
func (g *guest) lastPass() uint64 {
	raw, _ := os.ReadFile(g.console)
	var last uint64
	for _, m := range passLine.FindAllSubmatch(raw, -1) {
		if n, err := strconv.ParseUint(string(m[1]), 16, 32); err == nil {
			last = max(last, n)
		}
	}
	return last
}

// waitPasses waits until the dirty guest has finished n more passes than
// it had when called: every page of its range written since.
func (g *guest) waitPasses(ctx context.Context, n uint64, limit time.Duration) error {
	from := g.lastPass()
	return benchproc.Poll(ctx, fmt.Sprintf("%d more passes of the dirty guest (from %d)", n, from), limit, 5*time.Millisecond, func() (bool, error) {
		if g.p.Exited() {
			return false, fmt.Errorf("%s exited", g.p.Name)
		}
		return g.lastPass() >= from+n, nil
	})
}

// snapOut matches `tern snapshot create`'s line.
var snapOut = regexp.MustCompile(`memory (\d+) of (\d+) bytes stored, took ([0-9.]+) ms`)

// snapshot is one snapshot's figures, as tern reports them.
type snapshot struct {
	took   time.Duration
	stored int64
}

// snapshot pauses the guest, writes a snapshot into a fresh directory,
// resumes it, and returns tern's own figures; the directory is removed.
func (b *bench) snapshot(ctx context.Context, g *guest, name string, diff bool) (snapshot, error) {
	dir := filepath.Join(b.dir, name)
	defer os.RemoveAll(dir)
	args := []string{"snapshot", "create", "--api-socket", g.sock, "--dir", dir, "--resume"}
	if diff {
		args = append(args, "--diff")
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(sctx, b.tern, args...).CombinedOutput()
	if err != nil {
		return snapshot{}, g.p.Failed(fmt.Errorf("tern %s: %w: %s", strings.Join(args, " "), err, out))
	}
	m := snapOut.FindSubmatch(out)
	if m == nil {
		return snapshot{}, fmt.Errorf("tern snapshot create said %q, which has no figures", out)
	}
	stored, _ := strconv.ParseInt(string(m[1]), 10, 64)
	msf, _ := strconv.ParseFloat(string(m[3]), 64)
	return snapshot{took: time.Duration(msf * float64(time.Millisecond)), stored: stored}, nil
}

// idle snapshots a 2 GiB halt guest that touched almost nothing.
func (b *bench) idle(ctx context.Context, runs int) {
	const part = "snapshot-idle"
	fmt.Printf("snapbench: %s: halt guest in %s RAM, full snapshot, %d runs\n", part, guestMemory, runs)
	halt, err := tinyguest.BuildHalt(b.dir)
	if err != nil {
		b.fail(part, err)
		return
	}
	g, err := b.start(ctx, "idle", halt)
	if err != nil {
		b.fail(part, err)
		return
	}
	defer g.p.Stop()
	if err := g.waitLine(ctx, tinyguest.HaltLine, 20*time.Second); err != nil {
		b.fail(part, err)
		return
	}
	var took []time.Duration
	var stored int64
	for i := range runs {
		s, err := b.snapshot(ctx, g, fmt.Sprintf("idle-%d", i), false)
		if err != nil {
			b.fail(part, err)
			return
		}
		took, stored = append(took, s.took), s.stored
	}
	mn, med := minMedian(took)
	fmt.Printf("BENCH %s tern runs=%d took-ms=%s took-ms-min=%s stored-bytes=%d\n", part, len(took), ms(med), ms(mn), stored)
}

// touched snapshots a 2 GiB guest that wrote 512 MiB, beside a plain
// write of as much to a file.
func (b *bench) touched(ctx context.Context, runs int) {
	const part = "snapshot-touched"
	fmt.Printf("snapbench: %s: dirty guest writing %d MiB of %s RAM, full snapshot after a whole pass, beside writing %d MiB to a file (4 MiB writes, fsync, rename, directory fsync), each into just-freed page cache; %d runs each, interleaved\n",
		part, touchedMiB, guestMemory, touchedMiB, runs)
	dirty, err := tinyguest.BuildDirty(b.dir, tinyguest.DirtyOptions{MiB: touchedMiB})
	if err != nil {
		b.fail(part, err)
		return
	}
	g, err := b.start(ctx, "touched", dirty)
	if err != nil {
		b.fail(part, err)
		return
	}
	defer g.p.Stop()
	// Pass 1 ends once every page has been touched; one more makes sure.
	if err := g.waitPasses(ctx, 2, 2*time.Minute); err != nil {
		b.fail(part, err)
		return
	}
	// As many distinct bytes as the guest's, so that the reference too
	// reads memory that is not in the CPU's caches; page-aligned, as
	// O_DIRECT needs (and as guest RAM is).
	data, err := unix.Mmap(-1, 0, touchedMiB<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		b.fail(part, err)
		return
	}
	defer unix.Munmap(data)
	for i := range data {
		data[i] = 0xa5
	}
	var took, ref, refDirect []time.Duration
	var stored int64
	scratch := filepath.Join(b.dir, "scratch")
	for i := range runs {
		if _, err := writeReference(scratch, data, false); err != nil {
			b.fail(part+" scratch", err)
			return
		}
		s, err := b.snapshot(ctx, g, fmt.Sprintf("touched-%d", i), false)
		if err != nil {
			b.fail(part, err)
			return
		}
		if s.stored < touchedMiB<<20 {
			b.fail(part, fmt.Errorf("the snapshot stored %d bytes, less than the %d MiB the guest wrote", s.stored, touchedMiB))
			return
		}
		took, stored = append(took, s.took), s.stored
		if _, err := writeReference(scratch, data, false); err != nil {
			b.fail(part+" scratch", err)
			return
		}
		r, err := writeReference(filepath.Join(b.dir, "reference"), data, false)
		if err != nil {
			b.fail(part+" reference", err)
			return
		}
		rd, err := writeReference(filepath.Join(b.dir, "reference"), data, true)
		if err != nil {
			b.fail(part+" reference (O_DIRECT)", err)
			return
		}
		ref, refDirect = append(ref, r), append(refDirect, rd)
		fmt.Printf("snapbench: %s run %d: tern %s ms, file write %s ms, with O_DIRECT %s ms\n", part, i, ms(s.took), ms(r), ms(rd))
	}
	mn, med := minMedian(took)
	rmn, rmed := minMedian(ref)
	dmn, dmed := minMedian(refDirect)
	fmt.Printf("BENCH %s tern runs=%d took-ms=%s took-ms-min=%s stored-bytes=%d\n", part, len(took), ms(med), ms(mn), stored)
	fmt.Printf("BENCH %s file-write runs=%d took-ms=%s took-ms-min=%s bytes=%d\n", part, len(ref), ms(rmed), ms(rmn), touchedMiB<<20)
	fmt.Printf("BENCH %s file-write-direct runs=%d took-ms=%s took-ms-min=%s bytes=%d\n", part, len(refDirect), ms(dmed), ms(dmn), touchedMiB<<20)
	fmt.Printf("BENCH %s ratio tern/file-write median=%.2f min=%.2f (goal: at most 1.25) tern/file-write-direct median=%.2f\n",
		part, float64(med)/float64(rmed), float64(mn)/float64(rmn), float64(med)/float64(dmed))
}

// writeReference writes data to a fresh file at path in chunk-sized
// writes (with O_DIRECT if direct) and renames it into place the way tern
// commits a memory file, then deletes it, so that its page cache is free
// for the next writer.
func writeReference(path string, data []byte, direct bool) (time.Duration, error) {
	os.Remove(path)
	start := time.Now()
	tmp := path + ".tmp"
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if direct {
		flags |= unix.O_DIRECT
	}
	f, err := os.OpenFile(tmp, flags, 0o600)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp)
	for off := 0; off < len(data); off += chunk {
		if _, err := f.Write(data[off:min(len(data), off+chunk)]); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return 0, err
	}
	err = d.Sync()
	d.Close()
	took := time.Since(start)
	os.Remove(path)
	return took, err
}

// diff measures diff snapshots of guests that rewrite more and more.
func (b *bench) diff(ctx context.Context, runs int) {
	const part = "snapshot-diff"
	fmt.Printf("snapbench: %s: dirty guests rewriting %v MiB of %s RAM with --track-dirty-pages; a full snapshot, one more pass, then a diff; %d runs each\n",
		part, diffMiBs, guestMemory, runs)
	for _, mib := range diffMiBs {
		name := fmt.Sprintf("diff-%dM", mib)
		dirty, err := tinyguest.BuildDirty(b.dir, tinyguest.DirtyOptions{MiB: mib})
		if err != nil {
			b.fail(part, err)
			return
		}
		if !b.diffOne(ctx, part, name, dirty, mib, runs) {
			return
		}
	}
}

func (b *bench) diffOne(ctx context.Context, part, name, kernel string, mib uint32, runs int) bool {
	g, err := b.start(ctx, name, kernel, "--track-dirty-pages")
	if err != nil {
		b.fail(part, err)
		return false
	}
	defer g.p.Stop()
	if err := g.waitPasses(ctx, 2, 2*time.Minute); err != nil {
		b.fail(part, err)
		return false
	}
	var took []time.Duration
	var stored int64
	for i := range runs {
		if _, err := b.snapshot(ctx, g, fmt.Sprintf("%s-full-%d", name, i), false); err != nil {
			b.fail(part, err)
			return false
		}
		if err := g.waitPasses(ctx, 2, time.Minute); err != nil {
			b.fail(part, err)
			return false
		}
		s, err := b.snapshot(ctx, g, fmt.Sprintf("%s-diff-%d", name, i), true)
		if err != nil {
			b.fail(part, err)
			return false
		}
		if s.stored < int64(mib)<<20 {
			b.fail(part, fmt.Errorf("%s: the diff stored %d bytes, less than the %d MiB the guest rewrote", name, s.stored, mib))
			return false
		}
		took, stored = append(took, s.took), s.stored
	}
	mn, med := minMedian(took)
	fmt.Printf("BENCH %s tern rewritten-mib=%d runs=%d took-ms=%s took-ms-min=%s stored-bytes=%d ms-per-mib=%.3f\n",
		part, mib, len(took), ms(med), ms(mn), stored, float64(med)/1e6/float64(mib))
	return true
}

func minMedian(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[0], s[len(s)/2]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
