package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/internal/seccomp"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/test/pki"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm/api"
)

// These tests run real tern processes, with the tiny counter guest on
// this host's /dev/kvm: this test binary run again as tern (see
// TestTernProcess), so the filter confines exactly tern's code. The
// parent drives them through their API and reads /proc.

// TestTernProcess is tern's main when TERN_TEST_AS_TERN is set, with the
// arguments after "--". With TERN_TEST_EXEC_ON_SIGUSR1 set it also runs
// /bin/true at each SIGUSR1: a call (clone for a new process, then
// execve) that tern itself never makes, to show what the filter does.
func TestTernProcess(t *testing.T) {
	if os.Getenv("TERN_TEST_AS_TERN") != "1" {
		t.Skip("run as tern by the seccomp tests")
	}
	ignoreSIGPIPE()
	if os.Getenv("TERN_TEST_EXEC_ON_SIGUSR1") == "1" {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		go func() {
			for range usr1 {
				err := exec.Command("/bin/true").Run()
				fmt.Fprintf(os.Stderr, "test: /bin/true ran: %v\n", err)
			}
		}()
	}
	os.Exit(runMain(append([]string{"tern"}, flag.Args()...), os.Stdout, os.Stderr))
}

// lockedBuffer is a stderr a test reads while tern writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type ternProc struct {
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	console string
	api     string
	done    chan struct{}
}

// ternCommand is this test binary run as tern (TestTernProcess) with
// args, env added to its environment.
func ternCommand(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestTernProcess$", "-test.count=1", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "TERN_TEST_AS_TERN=1"), env...)
	return cmd
}

// startTern starts tern with args, its console in dir/name.console and
// its API on dir/name.sock (both added to args).
func startTern(t *testing.T, dir, name string, env []string, args ...string) *ternProc {
	t.Helper()
	p := &ternProc{stderr: &lockedBuffer{}, console: filepath.Join(dir, name+".console"), api: filepath.Join(dir, name+".sock"), done: make(chan struct{})}
	args = append(args, "--console", p.console, "--api-socket", p.api)
	p.cmd = ternCommand(env, args...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

// exited waits for tern's end and returns its exit status.
func (p *ternProc) exited(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("tern still runs after 30 s; stderr:\n%s", p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and checks tern's clean end (128+15), which runs the
// whole teardown under the filter.
func (p *ternProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exited(t); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("after SIGTERM: exit status %d, want %d; stderr:\n%s", code, 128+int(syscall.SIGTERM), p.stderr.String())
	}
}

// ticks counts the guest's tick lines on the console.
func (p *ternProc) ticks() int {
	b, _ := os.ReadFile(p.console)
	return strings.Count(string(b), "\n")
}

// waitTicks waits until the guest has printed n lines more than now.
func (p *ternProc) waitTicks(t *testing.T, n int) {
	t.Helper()
	want := p.ticks() + n
	p.waitGuest(t, func() bool { return p.ticks() >= want }, func() string {
		return fmt.Sprintf("the guest printed no %d more lines in 20 s", n)
	})
}

// waitGuest waits up to 20 s for done() while tern runs; failing, it
// says why.
func (p *ternProc) waitGuest(t *testing.T, done func() bool, why func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		select {
		case <-p.done:
			t.Fatalf("tern ended (status %d); stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal(why())
		}
	}
}

// waitAPI waits until tern's API answers.
func (p *ternProc) waitAPI(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := apiCall(p.api, http.MethodGet, "/vm", ""); err == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("tern ended (status %d); stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the API did not answer in 20 s")
		}
	}
}

// seccompModes returns the seccomp mode of each of tern's threads, as
// /proc/PID/task/*/status says (0 none, 2 filter).
func (p *ternProc) seccompModes(t *testing.T) map[string]int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", p.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", p.cmd.Process.Pid, err)
	}
	modes := map[string]int{}
	for _, f := range tasks {
		v, err := procStatus(f, "Seccomp")
		if err != nil {
			continue // the thread ended
		}
		var mode int
		fmt.Sscan(v, &mode)
		modes[filepath.Base(filepath.Dir(f))] = mode
	}
	return modes
}

// procStatus is field key of the /proc status file at path, spaces
// trimmed ("" when the file has no such field).
func procStatus(path, key string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil
}

func (p *ternProc) requireFiltered(t *testing.T) {
	t.Helper()
	for tid, m := range p.seccompModes(t) {
		if m != 2 {
			t.Errorf("thread %s has seccomp mode %d, want 2 (filter)", tid, m)
		}
	}
}

func counterGuest(t *testing.T) string {
	t.Helper()
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCounter(t.TempDir(), tinyguest.CounterOptions{TickEvery: 40000})
	if err != nil {
		t.Fatal(err)
	}
	return elf
}

func requireNoCgo(t *testing.T) {
	t.Helper()
	if seccomp.Usable() != nil {
		t.Skip("this test binary is built with cgo, whose threads the filter refuses; the project tests with CGO_ENABLED=0 (make test)")
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSeccompConfinedTernRunsTheWholeLifecycle runs a guest under the
// filter through everything tern does after the guest starts: pause,
// resume, a snapshot, a live migration over TCP with mutual TLS (found
// through the resolver) to a confined receiver, a restore of the
// snapshot, and teardown on SIGTERM. Any call the filter forgot would
// end one of these terns with SIGSYS.
func TestSeccompConfinedTernRunsTheWholeLifecycle(t *testing.T) {
	requireNoCgo(t)
	elf := counterGuest(t)
	dir := t.TempDir()
	// A disk with data and holes, streamed by the migration (reads,
	// SEEK_DATA and SEEK_HOLE at the source, writes and holes at the
	// destination) and locked and unlocked on the way.
	disk, copied := filepath.Join(dir, "disk.img"), filepath.Join(dir, "copied.img")
	data := bytes.Repeat([]byte("tern disk "), 1000)
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 4<<20); err != nil {
		t.Fatal(err)
	}
	df, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := df.WriteAt(data, 1<<20); err != nil {
		t.Fatal(err)
	}
	df.Close()
	src := startTern(t, dir, "source", nil, "--log-level", "warn", "run", "--kernel", elf, "--pvh", "--memory", "32M", "--disk", "path="+disk)
	src.waitAPI(t)
	src.waitTicks(t, 3)
	src.requireFiltered(t)

	if err := setVMState(src.api, "Paused"); err != nil {
		t.Fatal(err)
	}
	n := src.ticks()
	time.Sleep(300 * time.Millisecond)
	if src.ticks() > n+1 { // a line under way may end
		t.Errorf("the guest went on while paused")
	}
	snap := filepath.Join(dir, "snap")
	body, _ := json.Marshal(map[string]string{"dir": snap, "snapshot_type": "Full"})
	if _, err := apiCall(src.api, http.MethodPut, "/snapshot/create", string(body)); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if err := setVMState(src.api, "Resumed"); err != nil {
		t.Fatal(err)
	}
	src.waitTicks(t, 3)

	certs := t.TempDir()
	f, err := pki.Generate(certs, []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	dst := startTern(t, dir, "destination", nil, "migrate", "receive", "--listen", fmt.Sprintf("tcp:127.0.0.1:%d", port),
		"--tls-cert", f.ServerCert, "--tls-key", f.ServerKey, "--tls-ca", f.CA, "--disk", disk+"="+copied)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(dst.stderr.String(), "waiting for an incoming migration") {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver is not listening; stderr:\n%s", dst.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := json.Marshal(api.MigrationRequest{To: fmt.Sprintf("tcp:localhost:%d", port), WithDisks: true,
		TLSCert: f.ClientCert, TLSKey: f.ClientKey, TLSCA: f.CA})
	if _, err := apiCall(src.api, http.MethodPut, "/migration/send", string(req)); err != nil {
		t.Fatalf("migration send: %v", err)
	}
	st, err := watchMigration(src.api, quietProgress{})
	if err != nil || st.Phase != migrate.PhaseCompleted {
		t.Fatalf("migration: %+v, %v", st, err)
	}
	if code := src.exited(t); code != 0 {
		t.Errorf("the migrated source exited %d, want 0", code)
	}
	dst.waitAPI(t)
	dst.waitTicks(t, 3)
	dst.requireFiltered(t)
	dst.stop(t)
	got, err := os.ReadFile(copied)
	if err != nil || !bytes.Equal(got[1<<20:1<<20+len(data)], data) {
		t.Errorf("the streamed disk does not hold the source's data (%v)", err)
	}

	restored := startTern(t, dir, "restored", nil, "snapshot", "restore", "--dir", snap, "--disk", disk+"="+disk)
	restored.waitAPI(t)
	restored.waitTicks(t, 3)
	restored.requireFiltered(t)
	restored.stop(t)

	for _, p := range []*ternProc{src, dst, restored} {
		if s := p.stderr.String(); strings.Contains(s, "SIGSYS") {
			t.Errorf("SIGSYS in:\n%s", s)
		}
	}
}

// TestSeccompTrapsAForbiddenCallInARunningTern has a confined tern start
// a program, which it never does itself: the filter refuses the call and
// tern dies as designed, exit status 2, naming SIGSYS and the call.
func TestSeccompTrapsAForbiddenCallInARunningTern(t *testing.T) {
	requireNoCgo(t)
	elf := counterGuest(t)
	p := startTern(t, t.TempDir(), "tern", []string{"TERN_TEST_EXEC_ON_SIGUSR1=1"}, "run", "--kernel", elf, "--pvh", "--memory", "32M")
	p.waitAPI(t)
	p.waitTicks(t, 2)
	p.cmd.Process.Signal(syscall.SIGUSR1)
	code := p.exited(t)
	stderr := p.stderr.String()
	if code != 2 || !strings.Contains(stderr, "SIGSYS: bad system call") {
		t.Fatalf("exit status %d, want 2 and SIGSYS; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "os/exec.(*Cmd).Start") {
		t.Errorf("the traceback does not name the call's caller:\n%s", stderr)
	}
	if strings.Contains(stderr, "/bin/true ran") {
		t.Errorf("the forbidden program ran:\n%s", stderr)
	}
}

// TestNoSeccompLeavesTernUnconfined: with --no-seccomp no thread has a
// filter and the same program runs; with --seccomp-audit every thread has
// it and the program runs too (the kernel logs the calls).
func TestNoSeccompLeavesTernUnconfined(t *testing.T) {
	requireNoCgo(t)
	elf := counterGuest(t)
	for _, c := range []struct {
		flag string
		mode int
	}{{"--no-seccomp", 0}, {"--seccomp-audit", 2}} {
		t.Run(c.flag, func(t *testing.T) {
			p := startTern(t, t.TempDir(), "tern", []string{"TERN_TEST_EXEC_ON_SIGUSR1=1"}, "run", "--kernel", elf, "--pvh", "--memory", "32M", c.flag)
			p.waitAPI(t)
			p.waitTicks(t, 2)
			for tid, m := range p.seccompModes(t) {
				if m != c.mode {
					t.Errorf("thread %s has seccomp mode %d, want %d", tid, m, c.mode)
				}
			}
			p.cmd.Process.Signal(syscall.SIGUSR1)
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(p.stderr.String(), "/bin/true ran: <nil>") {
				if time.Now().After(deadline) {
					t.Fatalf("/bin/true did not run; stderr:\n%s", p.stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			p.waitTicks(t, 2)
			p.stop(t)
		})
	}
}

func TestSeccompFlagsExcludeEachOther(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"tern", "run", "--kernel", fakeBzImage(t), "--no-seccomp", "--seccomp-audit"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--no-seccomp and --seccomp-audit exclude each other") {
		t.Errorf("status %d, stderr %q", code, stderr.String())
	}
}
