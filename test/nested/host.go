package nested

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/ternvm/tern/test/fixture"
)

// hostInit is the nested test host's /init.
//
//go:embed hostinit.sh
var hostInit []byte

// Where things sit inside the test host.
const (
	hostScenarioDir = "/scenario"
	hostTern        = "/bin/tern"
	hostBzImage     = "/guest/bzImage"
	hostVmlinux     = "/guest/vmlinux"
	hostInitrd      = "/guest/initramfs.cpio"
	hostRootImage   = "/guest/root.ext4"
	hostAgent       = "/bin/agent"
	hostOut         = "/tmp/out"
)

// kvmModules are loaded in this order: kvm.ko needs irqbypass.ko.
var kvmModules = []string{"virt/lib/irqbypass.ko", "arch/x86/kvm/kvm.ko", "arch/x86/kvm/kvm-amd.ko"}

// netModules give the test host /dev/net/tun, for tern's virtio-net TAPs
// (tun.ko depends on nothing else), and Linux bridges, for a host address
// that outlives each TAP (the migration scenario moves a guest from one
// TAP to another); bridge.ko needs stp.ko, which needs llc.ko. The host
// /init loads them in this order.
var netModules = []string{"drivers/net/tun.ko", "net/llc/llc.ko", "net/802/stp.ko", "net/bridge/bridge.ko"}

// rcMarker is how the host /init reports the scenario's exit status.
var rcMarker = regexp.MustCompile(`@@TERN-SCENARIO-RC=(\d+)@@`)

// Host runs scenarios inside the nested test host.
type Host struct {
	fx     *fixture.Fixture
	qemu   string
	reason string
	// MemoryMiB and CPUs size the test host; guests live inside it.
	MemoryMiB int
	CPUs      int
	// Customize, when set, adds to the test host's initramfs, e.g. a tool
	// that a scenario needs and busybox lacks.
	Customize func(*fixture.Tree)
	// link, for a host of a pair (see RunPair), adds its NIC to the QEMU
	// command line.
	link []string
	// clockAhead, when set, starts the host's clock (its RTC, which its
	// kernel reads at boot) this far ahead of this machine's.
	clockAhead time.Duration
}

// NewHost returns the nested backend; reason says why it was chosen.
func NewHost(fx *fixture.Fixture, reason string) (*Host, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("the nested test host needs qemu-system-x86_64: install qemu-system-x86 (`make deps`): %w", err)
	}
	return &Host{fx: fx, qemu: qemu, reason: reason, MemoryMiB: 2048, CPUs: 2}, nil
}

// Describe implements Backend.
func (h *Host) Describe() string {
	return "nested test host (QEMU TCG + kvm-amd): " + h.reason
}

// Tree is the test host's initramfs for a job.
func (h *Host) Tree(job Job) *fixture.Tree {
	t := fixture.NewTree()
	for _, d := range []string{"/dev", "/proc", "/sys", "/tmp", "/root", "/etc", "/modules"} {
		t.Dir(d)
	}
	t.CharDev("/dev/console", 0o600, 5, 1)
	t.Busybox(h.fx.Busybox, h.fx.BusyboxApplets)
	t.File("/init", 0o755, hostInit)
	for _, m := range append(kvmModules, netModules...) {
		t.HostFile("/modules/"+filepath.Base(m), 0o644, h.fx.Module(m))
	}
	// The agent runs on the host side too: the peer of the guest's agent.
	t.HostFile(hostAgent, 0o755, h.fx.Agent)
	t.HostFile(hostTern, 0o755, job.Tern)
	t.HostFile(hostBzImage, 0o644, h.fx.BzImage)
	t.HostFile(hostVmlinux, 0o644, h.fx.Vmlinux)
	t.HostFile(hostInitrd, 0o644, h.fx.Initramfs)
	t.HostFile(hostRootImage, 0o644, h.fx.RootImage)
	for name, data := range job.Files {
		t.File(hostScenarioDir+"/"+name, 0o755, data)
	}
	env := scriptEnv(hostTern, hostBzImage, hostVmlinux, hostInitrd, hostOut, hostScenarioDir, job.Env)
	env["SCENARIO_ENTRY"] = job.Entry
	env["ROOT_IMAGE"] = hostRootImage
	env["AGENT"] = hostAgent
	t.File("/etc/scenario.env", 0o644, []byte(shellExports(env)))
	if h.Customize != nil {
		h.Customize(t)
	}
	return t
}

// Run implements Backend: it boots the test host with the job, which runs
// the script and powers off. Result.Output is the host's whole console.
func (h *Host) Run(ctx context.Context, job Job) (*Result, error) {
	if err := checkJob(job); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "tern-testhost-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	cpio := filepath.Join(work, "host.cpio")
	tree := h.Tree(job)
	for _, tool := range hostTools {
		if err := AddHostTool(tree, tool); err != nil {
			return nil, err
		}
	}
	if err := tree.WriteCPIOFile(cpio); err != nil {
		return nil, fmt.Errorf("test host initramfs: %w", err)
	}

	// A wedged test host never finishes: stop it as soon as it says so,
	// or as soon as its heartbeat stops, rather than when ctx runs out.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	heartbeat := filepath.Join(work, "heartbeat")
	monitor := filepath.Join(work, "monitor.sock")
	cmd := exec.CommandContext(runCtx, h.qemu, h.qemuArgs(cpio, heartbeat, monitor)...)
	var buf bytes.Buffer
	var mu sync.Mutex
	wedged := ""
	setWedged := func(reason string) {
		mu.Lock()
		if wedged == "" {
			wedged = reason
		}
		mu.Unlock()
		stop()
	}
	// Where its CPUs are says what stopped it. A soft-lockup report goes
	// on with the stuck task's stack for a few seconds: wait for that.
	var reports sync.WaitGroup
	exited := false // under mu: no report starts once QEMU is gone
	cpuReport := func(reason string, wait time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if exited {
			return
		}
		reports.Add(1)
		go func() {
			defer reports.Done()
			time.Sleep(wait)
			setWedged(fmt.Sprintf("%s; its CPUs:\n%s%s", reason, wedgedCPUs(monitor), moduleLines(heartbeat)))
		}()
	}
	w := &wedgeWatch{w: outputSink(&buf, job.Live), wedged: func(reason string) { cpuReport(reason, 5*time.Second) }}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Stdin = nil // /dev/null: nothing types on the host's console
	go watchHeartbeat(runCtx, heartbeat, heartbeatLimit, heartbeatPoll, func(silent time.Duration) {
		cpuReport(fmt.Sprintf("it showed no sign of life (heartbeat) for %v", silent.Round(time.Second)), 0)
	})
	err = cmd.Run()
	mu.Lock()
	exited = true
	mu.Unlock()
	reports.Wait()
	stop()
	w.mu.Lock()
	out := dropTCGFeatureWarnings(buf.String())
	w.mu.Unlock()
	mu.Lock()
	reason := wedged
	mu.Unlock()
	if reason != "" {
		return nil, fmt.Errorf("scenario %s: %w: %s; console ends:\n%s", job.Entry, ErrHostWedged, reason, tail(out, 60))
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("nested test host did not finish scenario %s: %w; console ends:\n%s", job.Entry, ctx.Err(), tail(out, 40))
	}
	if err != nil {
		return nil, fmt.Errorf("qemu-system-x86_64 (nested test host) failed: %w; console ends:\n%s", err, tail(out, 40))
	}
	rc, err := scenarioRC(out)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w; console ends:\n%s", job.Entry, endedEarly(out, err), tail(out, 40))
	}
	return &Result{Output: out, RC: rc}, nil
}

// endedEarly is the error of a test host that ended without reporting its
// scenario's exit status (err, from scenarioRC): a wedged host when it
// never reported one (errNoRC), whether its kernel panicked or it reset
// or powered off with no word on its console (seen: mid-scenario, the
// scenario's last line a host program's output). Its /init reports the
// status whatever the scenario does, and nothing the scenario runs resets
// it, so either way it is the emulated test host failing.
func endedEarly(console string, err error) error {
	switch {
	case !errors.Is(err, errNoRC):
		return err
	case hostPanicked(console):
		return fmt.Errorf("%w: its kernel panicked (%v)", ErrHostWedged, err)
	}
	return fmt.Errorf("%w: it reset or powered off with no panic on its console (%v)", ErrHostWedged, err)
}

// errNoRC is scenarioRC's error for a console with no exit status.
var errNoRC = fmt.Errorf("the test host powered off without reporting the scenario's exit status (no %q line)", "@@TERN-SCENARIO-RC=N@@")

// hostPanic is the test host kernel's panic line as its console shows it,
// at the start of a line: a guest's panic, which a scenario may print,
// comes indented or prefixed.
var hostPanic = regexp.MustCompile(`(?m)^\[\s*\d+\.\d+\] Kernel panic - not syncing`)

// hostPanicked says whether a test host that ended without reporting
// its scenario's exit status did so because its own kernel panicked:
// like a soft lockup, nothing a user process does panics a sound kernel
// (seen: a stack guard page hit inside exc_page_fault, in QEMU's and in
// tern's process), so it is the emulated test host failing.
func hostPanicked(console string) bool { return hostPanic.MatchString(console) }

// The test host's /init writes a line to its second serial port every
// heartbeatEvery; the harness polls the file behind that port and calls a
// host that wrote nothing for heartbeatLimit wedged. Every step inside a
// scenario has a shorter limit of its own, so a healthy host never stays
// silent that long.
const (
	heartbeatEvery = 5 * time.Second // hostinit.sh's sleep
	heartbeatPoll  = 2 * time.Second
	heartbeatLimit = 24 * heartbeatEvery
)

// qemuArgs boots the test host with its console on stdio (ttyS0), its
// heartbeat port (ttyS1) written to the file heartbeat and QEMU's monitor
// on the Unix socket monitor. nokaslr keeps the kernel at the same
// addresses in every run, so a wedged host's instruction pointers can be
// named from /proc/kallsyms of any other run.
func (h *Host) qemuArgs(initrd, heartbeat, monitor string) []string {
	args := []string{
		"-accel", "tcg", "-M", "q35", "-cpu", "EPYC,+svm",
		"-m", strconv.Itoa(h.MemoryMiB), "-smp", strconv.Itoa(h.CPUs),
		"-display", "none", "-monitor", "unix:" + monitor + ",server=on,wait=off", "-no-reboot", "-net", "none",
		"-serial", "stdio", "-serial", "file:" + heartbeat,
		"-kernel", h.fx.BzImage, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet nokaslr",
	}
	if h.clockAhead != 0 {
		args = append(args, "-rtc", "base="+time.Now().UTC().Add(h.clockAhead).Format("2006-01-02T15:04:05"))
	}
	return append(args, h.link...)
}

// tcgFeatureWarning is QEMU saying, once per vCPU, which features of the
// EPYC model TCG leaves out; it says nothing about the run.
var tcgFeatureWarning = regexp.MustCompile(`(?m)^qemu-system-x86_64: warning: TCG doesn't support requested feature: .*\n`)

func dropTCGFeatureWarnings(console string) string {
	return tcgFeatureWarning.ReplaceAllString(console, "")
}

// scenarioRC finds the exit status the host /init reported.
func scenarioRC(console string) (int, error) {
	m := rcMarker.FindAllStringSubmatch(console, -1)
	if len(m) == 0 {
		return 0, errNoRC
	}
	rc, err := strconv.Atoi(m[len(m)-1][1])
	if err != nil {
		return 0, fmt.Errorf("scenario exit status %q: %w", m[len(m)-1][1], err)
	}
	return rc, nil
}
