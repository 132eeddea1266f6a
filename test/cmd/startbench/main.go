// Command startbench measures how fast tern starts and restores guests on
// this machine's own /dev/kvm, side by side with QEMU where QEMU can do
// the same:
//
//   - start: from fork/exec of the monitor to the first byte of the hello
//     tiny guest's console line on a pipe (tern `run --pvh --memory 128M
//     --console stdio`; QEMU `-M microvm` with the same ELF as -kernel and
//     its serial on stdout), interleaved runs, min and median; tern
//     firecracker booting the same guest from a Firecracker configuration
//     file (--no-api --config-file), the console on its stdout; and tern
//     run with no host cache (--cache-dir ""), asking KVM for its
//     supported CPUID as a first start after boot does. Every other tern
//     run of the bench keeps that answer in a cache directory of its own,
//     written by one start before the measured ones: the state of a host
//     that has started a guest since it booted. Beside them, go-floor
//     (test/cmd/gofloor): the least a Go program does to boot the same
//     guest and print its line, the floor under any Go monitor on this
//     machine in this run.
//   - rate: hello guests started and finished one after another, and 8 at
//     a time, VMs per second, every guest's console checked for its line.
//     (QEMU's microvm does not power off on the guest's ACPI S5 write, so
//     it has no finished-guest rate to compare.)
//   - idle-pss: PSS (/proc/PID/smaps_rollup) of 30 tern monitors (10
//     QEMUs) at once, each running the halt guest in 128 MiB, per VM;
//     and its anonymous part, which sharing does not divide.
//   - restore: from fork/exec of `tern snapshot restore` of a 2 GiB halt
//     guest's snapshot to its first KVM_RUN, as tern logs it
//     (since_request); and the same seen from outside (exec to the log
//     line read back).
//
// On a PVM-backed /dev/kvm the guest's ring-0 code is emulated; that
// does not matter here, where the guest runs a few dozen instructions.
//
// It prints BENCH lines (values are medians, "-min" the smallest run) and
// a BENCH-ERROR line for anything that failed, then exits 1. Every
// process it starts is stopped on the way out and every wait is bounded.
//
//	go run ./test/cmd/startbench [-runs 20] [-tern bin/tern]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/ternvm/tern/test/benchproc"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/test/fixture"
	"github.com/ternvm/tern/test/tinyguest"
)

const qemuBinary = "qemu-system-x86_64"

// The guests' shapes.
const (
	startMemory   = "128M"
	restoreMemory = "2G"
	rateVMs       = 50
	rateParallel  = 8
	// The measure: 30 tern monitors at once, 10 QEMUs (each
	// QEMU holds several times more, and the machine 24 GiB).
	pssTernVMs = 30
	pssQEMUVMs = 10
)

// restoreLine is what tern logs on a restored guest's first KVM_RUN.
const restoreLine = "first KVM_RUN after restore"

type bench struct {
	ps     *benchproc.Procs
	dir    string
	tern   string
	floor  string // test/cmd/gofloor
	hello  string
	halt   string
	qemu   bool // QEMU is installed
	failed bool
}

func main() { os.Exit(run()) }

func run() int {
	runs := flag.Int("runs", 20, "interleaved runs of start (and of restore, a quarter of them, at least 3)")
	ternBin := flag.String("tern", "", "the tern binary (default: build ./cmd/tern into the temporary directory)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up on the whole bench after this")
	flag.Parse()
	if *runs < 1 {
		fmt.Println("BENCH-ERROR startbench: -runs must be at least 1")
		return 2
	}
	sess, err := benchproc.NewSession("startbench", *timeout)
	if err != nil {
		fmt.Println("BENCH-ERROR startbench: " + benchproc.OneLine(err))
		return 1
	}
	defer sess.Close()
	ctx, dir := sess.Ctx, sess.Dir
	b := &bench{ps: sess.Procs, dir: dir}

	be := benchproc.Announce("startbench")
	if be.Kind == kvm.BackendAbsent {
		fmt.Println("BENCH-ERROR startbench: no /dev/kvm: " + be.Detail)
		return 1
	}
	if err := b.prepare(ctx, *ternBin); err != nil {
		fmt.Println("BENCH-ERROR startbench: " + benchproc.OneLine(err))
		return 1
	}
	b.start(ctx, *runs)
	b.rate(ctx, 1)
	b.rate(ctx, rateParallel)
	b.idlePSS(ctx)
	b.restore(ctx, max(3, *runs/4))
	if b.failed {
		return 1
	}
	return 0
}

// cache is the bench's own host cache directory (tern --cache-dir).
func (b *bench) cache() string { return filepath.Join(b.dir, "cache") }

func (b *bench) prepare(ctx context.Context, ternBin string) error {
	_, err := exec.LookPath(qemuBinary)
	b.qemu = err == nil
	if b.tern, err = benchproc.Tern(ctx, b.dir, ternBin); err != nil {
		return err
	}
	b.floor = filepath.Join(b.dir, "gofloor")
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := fixture.BuildStatic(bctx, "", "github.com/ternvm/tern/test/cmd/gofloor", b.floor); err != nil {
		return fmt.Errorf("build gofloor: %w", err)
	}
	if b.hello, err = tinyguest.BuildHello(b.dir); err != nil {
		return fmt.Errorf("build the hello guest: %w", err)
	}
	if b.halt, err = tinyguest.BuildHalt(b.dir); err != nil {
		return fmt.Errorf("build the halt guest: %w", err)
	}
	return nil
}

func (b *bench) fail(part string, err error) {
	b.failed = true
	fmt.Printf("BENCH-ERROR %s: %s\n", part, benchproc.OneLine(err))
}

// qemuArgs is QEMU's microvm the way TESTHOST.md found works on this
// /dev/kvm (-cpu host minus arch-capabilities, which the PVM-backed KVM
// refuses), with nothing but microvm's own serial port.
func qemuArgs(kernel, memory, serial string) []string {
	return []string{qemuBinary,
		"-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities",
		"-m", memory, "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", serial, "-kernel", kernel,
	}
}

// firstByte starts argv with its stdout on a pipe and returns the time
// from just before fork/exec (after its log file was made) to the first
// byte read, after checking the
// whole hello line arrives. The process is stopped before it returns.
func (b *bench) firstByte(ctx context.Context, name string, argv []string) (time.Duration, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer pr.Close()
	p, err := b.ps.Start(name, filepath.Join(b.dir, name+".log"), pw, argv...)
	pw.Close()
	if err != nil {
		return 0, err
	}
	defer p.Stop()
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	one := make([]byte, 1)
	if _, err := io.ReadFull(pr, one); err != nil {
		return 0, p.Failed(fmt.Errorf("read the console's first byte: %w", err))
	}
	took := time.Since(p.Started)
	var out bytes.Buffer
	out.Write(one)
	buf := make([]byte, 256)
	for !strings.Contains(out.String(), tinyguest.HelloLine) {
		n, err := pr.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return 0, p.Failed(fmt.Errorf("console %q lacks %q: %w", out.String(), tinyguest.HelloLine, err))
		}
	}
	return took, nil
}

// start measures exec -> first console byte: tern run, tern firecracker
// booting from a Firecracker configuration file (the path a Firecracker
// client's --no-api --config-file start takes), and QEMU, in turn.
func (b *bench) start(ctx context.Context, runs int) {
	const part = "start"
	fmt.Printf("startbench: %s: hello guest, %s RAM, exec to first console byte on a pipe; %d interleaved runs\n", part, startMemory, runs)
	fcConfig, err := b.firecrackerConfig()
	if err != nil {
		b.fail(part+" tern-firecracker", err)
		return
	}
	type contender struct {
		who  string
		argv []string
		ds   []time.Duration
		err  error
	}
	run := []string{b.tern, "run", "--kernel", b.hello, "--pvh", "--memory", startMemory, "--console", "stdio"}
	cs := []*contender{
		{who: "tern", argv: slices.Concat(run, []string{"--cache-dir", b.cache()})},
		{who: "tern-no-cache", argv: slices.Concat(run, []string{"--cache-dir", ""})},
		{who: "tern-firecracker", argv: []string{b.tern, "firecracker", "--no-api", "--config-file", fcConfig, "--cache-dir", b.cache()}},
		{who: "go-floor", argv: []string{b.floor, b.hello, strings.TrimSuffix(startMemory, "M")}},
	}
	// The cache's first answer is KVM's: written here, not measured.
	if _, err := b.firstByte(ctx, "start-cache", cs[0].argv); err != nil {
		b.fail(part+" tern", err)
		return
	}
	if b.qemu {
		cs = append(cs, &contender{who: "qemu", argv: qemuArgs(b.hello, startMemory, "stdio")})
	}
	for i := range runs {
		// Each round starts with the next contender: a start right
		// after another VM monitor's exit is slower here (the memory
		// it freed is handed back to this machine's host at once, and
		// taking it again costs), so a fixed order would have tern
		// always follow QEMU's 150 MB teardown.
		for k := range cs {
			c := cs[(i+k)%len(cs)]
			if ctx.Err() != nil || c.err != nil {
				continue
			}
			d, err := b.firstByte(ctx, fmt.Sprintf("start-%s-%d", c.who, i), c.argv)
			if err != nil {
				c.err = err
			} else {
				c.ds = append(c.ds, d)
			}
		}
	}
	for _, c := range cs {
		if c.err != nil {
			b.fail(part+" "+c.who, c.err)
		}
		if len(c.ds) > 0 {
			mn, med := minMedian(c.ds)
			fmt.Printf("BENCH %s %s runs=%d first-byte-ms=%s first-byte-ms-min=%s\n", part, c.who, len(c.ds), ms(med), ms(mn))
		}
	}
	if !b.qemu {
		fmt.Printf("BENCH %s qemu n/a (%s not installed)\n", part, qemuBinary)
	}
}

// firecrackerConfig writes a Firecracker configuration file for the hello
// guest and returns its path.
func (b *bench) firecrackerConfig() (string, error) {
	mib, err := strconv.Atoi(strings.TrimSuffix(startMemory, "M"))
	if err != nil {
		return "", fmt.Errorf("start memory %q: %w", startMemory, err)
	}
	cfg := map[string]any{
		"boot-source":    map[string]any{"kernel_image_path": b.hello},
		"machine-config": map[string]any{"vcpu_count": 1, "mem_size_mib": mib},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.dir, "firecracker.json")
	return path, os.WriteFile(path, data, 0o600)
}

// rate starts rateVMs hello guests, parallel at a time, each run to its
// poweroff with its console in a file that must hold the hello line.
func (b *bench) rate(ctx context.Context, parallel int) {
	part := fmt.Sprintf("rate-%dx%d", rateVMs, parallel)
	fmt.Printf("startbench: %s: %d tern hello guests (%s) started and run to poweroff, %d at a time\n", part, rateVMs, startMemory, parallel)
	jobs := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	began := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := b.runHello(ctx, fmt.Sprintf("%s-%d", part, i)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range rateVMs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	took := time.Since(began)
	if len(errs) > 0 {
		b.fail(part, fmt.Errorf("%d of %d guests failed; first: %w", len(errs), rateVMs, errs[0]))
		return
	}
	fmt.Printf("BENCH %s tern vms=%d ok=%d wall-ms=%s vms-per-s=%.1f\n", part, rateVMs, rateVMs, ms(took), float64(rateVMs)/took.Seconds())
}

func (b *bench) runHello(ctx context.Context, name string) error {
	con := filepath.Join(b.dir, name+".console")
	p, err := b.ps.Start(name, filepath.Join(b.dir, name+".log"), nil, b.tern, "run",
		"--kernel", b.hello, "--pvh", "--memory", startMemory, "--console", con, "--cache-dir", b.cache())
	if err != nil {
		return err
	}
	defer p.Stop()
	if err := p.Wait(ctx, 20*time.Second); err != nil {
		return p.Failed(err)
	}
	got, _ := os.ReadFile(con)
	if !bytes.Contains(got, []byte(tinyguest.HelloLine)) {
		return p.Failed(fmt.Errorf("%s's console %q lacks %q", name, got, tinyguest.HelloLine))
	}
	os.Remove(con)
	os.Remove(p.Log)
	return nil
}

// idlePSS runs halt guests of one monitor at once (pssTernVMs tern,
// pssQEMUVMs QEMU) and reads each one's PSS once all are idle. PSS shares
// the binary's pages among the monitors running, so it falls as more run;
// pss-anon-kib, the memory each monitor has to itself, does not.
func (b *bench) idlePSS(ctx context.Context) {
	const part = "idle-pss"
	fmt.Printf("startbench: %s: %d tern and %d QEMU halt guests (%s) at once, PSS per VM once all print their line\n", part, pssTernVMs, pssQEMUVMs, startMemory)
	measure := func(who string, pssVMs int, argv func(console string) []string) {
		var ps []*benchproc.Proc
		defer func() {
			for _, p := range ps {
				p.Stop()
			}
		}()
		var cons []string
		for i := range pssVMs {
			name := fmt.Sprintf("%s-%s-%d", part, who, i)
			con := filepath.Join(b.dir, name+".console")
			p, err := b.ps.Start(name, filepath.Join(b.dir, name+".log"), nil, argv(con)...)
			if err != nil {
				b.fail(part+" "+who, err)
				return
			}
			ps, cons = append(ps, p), append(cons, con)
		}
		for i, p := range ps {
			if err := benchproc.WaitFile(ctx, p, cons[i], "its halt line", 20*time.Second, func(b []byte) bool {
				return bytes.Contains(b, []byte(tinyguest.HaltLine))
			}); err != nil {
				b.fail(part+" "+who, err)
				return
			}
		}
		// Let start-up's transient allocations settle.
		time.Sleep(500 * time.Millisecond)
		var kib, anon []int
		for _, p := range ps {
			k, err := pssKiB(p.Cmd.Process.Pid, "Pss:")
			if err != nil {
				b.fail(part+" "+who, err)
				return
			}
			a, err := pssKiB(p.Cmd.Process.Pid, "Pss_Anon:")
			if err != nil {
				b.fail(part+" "+who, err)
				return
			}
			kib, anon = append(kib, k), append(anon, a)
		}
		slices.Sort(kib)
		slices.Sort(anon)
		sum := 0
		for _, k := range kib {
			sum += k
		}
		fmt.Printf("BENCH %s %s vms=%d pss-kib=%d pss-kib-min=%d pss-kib-mean=%d pss-anon-kib=%d\n", part, who, len(kib), kib[len(kib)/2], kib[0], sum/len(kib), anon[len(anon)/2])
	}
	measure("tern", pssTernVMs, func(con string) []string {
		return []string{b.tern, "run", "--kernel", b.halt, "--pvh", "--memory", startMemory, "--console", con, "--cache-dir", b.cache()}
	})
	if b.qemu {
		measure("qemu", pssQEMUVMs, func(con string) []string { return qemuArgs(b.halt, startMemory, "file:"+con) })
	}
}

// pssKiB is the process's proportional set size, or the part of it that
// field (e.g. "Pss_Anon:") names, from smaps_rollup.
func pssKiB(pid int, field string) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/smaps_rollup", field, pid)
}

var sinceRequest = regexp.MustCompile(`since_request="?([^" ]+)`)

// restore snapshots a 2 GiB halt guest once, then restores it runs times.
func (b *bench) restore(ctx context.Context, runs int) {
	const part = "restore"
	fmt.Printf("startbench: %s: halt guest in %s RAM, snapshot on this disk (page cache warm); exec of `tern snapshot restore` to first KVM_RUN; %d runs\n", part, restoreMemory, runs)
	snap := filepath.Join(b.dir, "snap")
	if err := b.snapshot(ctx, snap); err != nil {
		b.fail(part+" tern snapshot", err)
		return
	}
	var logged, outside []time.Duration
	for i := range runs {
		l, o, err := b.restoreOnce(ctx, fmt.Sprintf("%s-%d", part, i), snap)
		if err != nil {
			b.fail(part+" tern", err)
			break
		}
		logged, outside = append(logged, l), append(outside, o)
	}
	if len(logged) > 0 {
		lmin, lmed := minMedian(logged)
		omin, omed := minMedian(outside)
		fmt.Printf("BENCH %s tern runs=%d first-kvm-run-ms=%s first-kvm-run-ms-min=%s seen-ms=%s seen-ms-min=%s\n",
			part, len(logged), ms(lmed), ms(lmin), ms(omed), ms(omin))
	}
	fmt.Printf("BENCH %s qemu n/a (QEMU shows no first KVM_RUN; its incoming migration from a file is another measure)\n", part)
}

func (b *bench) snapshot(ctx context.Context, snap string) error {
	name := "restore-src"
	con := filepath.Join(b.dir, name+".console")
	sock := filepath.Join(b.dir, name+".sock")
	p, err := b.ps.Start(name, filepath.Join(b.dir, name+".log"), nil, b.tern, "run",
		"--kernel", b.halt, "--pvh", "--memory", restoreMemory, "--console", con, "--api-socket", sock)
	if err != nil {
		return err
	}
	defer p.Stop()
	if err := benchproc.WaitFile(ctx, p, con, "its halt line", 20*time.Second, func(b []byte) bool {
		return bytes.Contains(b, []byte(tinyguest.HaltLine))
	}); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(sctx, b.tern, "snapshot", "create", "--api-socket", sock, "--dir", snap).CombinedOutput()
	if err != nil {
		return p.Failed(fmt.Errorf("tern snapshot create: %w: %s", err, out))
	}
	return nil
}

// restoreOnce restores snap and returns tern's own since_request figure
// and the time until the bench read that log line.
func (b *bench) restoreOnce(ctx context.Context, name, snap string) (time.Duration, time.Duration, error) {
	p, err := b.ps.Start(name, filepath.Join(b.dir, name+".log"), nil, b.tern, "--log-level", "debug",
		"snapshot", "restore", "--dir", snap, "--console", "none", "--trust-snapshot-paths", "--cache-dir", b.cache())
	if err != nil {
		return 0, 0, err
	}
	defer p.Stop()
	var line string
	err = benchproc.Poll(ctx, "the "+restoreLine+" log line", 20*time.Second, time.Millisecond, func() (bool, error) {
		raw, _ := os.ReadFile(p.Log)
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.Contains(l, restoreLine) {
				line = l
				return true, nil
			}
		}
		if p.Exited() {
			return false, errors.New("it exited first")
		}
		return false, nil
	})
	seen := time.Since(p.Started)
	if err != nil {
		return 0, 0, p.Failed(err)
	}
	m := sinceRequest.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, p.Failed(fmt.Errorf("no since_request in %q", line))
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		return 0, 0, p.Failed(fmt.Errorf("since_request in %q: %w", line, err))
	}
	return d, seen, nil
}

func minMedian(ds []time.Duration) (time.Duration, time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[0], s[len(s)/2]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
