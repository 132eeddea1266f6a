package seccomp_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/internal/seccomp"
	"golang.org/x/sys/unix"
)

// These tests install the filter in a child: the test binary run again
// with TERN_SECCOMP_CHILD naming what it does once confined. A filter
// cannot be removed, so this process must stay free of it.

func TestSeccompChild(t *testing.T) {
	what := os.Getenv("TERN_SECCOMP_CHILD")
	if what == "" {
		t.Skip("run by the Install tests")
	}
	os.Exit(child(what))
}

// child runs one case and returns the exit status; 0 is success.
func child(what string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", a...)
		return 3
	}
	mode := seccomp.Enforce
	if what == "audit-exec" {
		mode = seccomp.Audit
	}
	// What the run phase inherits from the build: listening sockets.
	dir := os.Getenv("TERN_SECCOMP_DIR")
	uln, err := net.Listen("unix", filepath.Join(dir, "api.sock"))
	if err != nil {
		return fail("%v", err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("%v", err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return fail("%v", err)
	}
	if err := seccomp.Install(mode); errors.Is(err, seccomp.ErrCgo) {
		return 4
	} else if err != nil {
		return fail("install: %v", err)
	}
	switch what {
	case "run-phase":
		if err := runPhaseWork(dir, uln, tln); err != nil {
			return fail("%v", err)
		}
		// The parent looks at this process's threads meanwhile.
		fmt.Println("confined")
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "exec", "audit-exec":
		if err := exec.Command("/bin/true").Run(); err != nil {
			return fail("exec: %v", err)
		}
		return 0
	case "ioctl":
		const kvmCreateVM = 0xae01
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, devNull.Fd(), kvmCreateVM, 0)
		return fail("ioctl KVM_CREATE_VM returned (errno %v)", errno)
	}
	return fail("unknown case %q", what)
}

// runPhaseWork does, under the filter, the kinds of things tern's run
// phase does: threads come and go, the heap grows and is scavenged,
// timers fire, files are written and renamed, Unix and TCP connections
// are made, accepted and used.
func runPhaseWork(dir string, uln, tln net.Listener) error {
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() { // a locked goroutine that returns ends its thread
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(time.Millisecond)
		}()
	}
	wg.Wait()
	junk := make([][]byte, 0, 64)
	for i := 0; i < 64; i++ {
		junk = append(junk, bytes.Repeat([]byte{byte(i)}, 1<<20))
	}
	junk = nil
	runtime.GC()
	debug.FreeOSMemory()

	sub := filepath.Join(dir, "snap")
	if err := os.MkdirAll(sub, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(sub, "state.tmp"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte("state"), 4096); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Truncate(1 << 20); err != nil {
		return err
	}
	f.Close()
	if err := os.Rename(filepath.Join(sub, "state.tmp"), filepath.Join(sub, "state")); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(sub, "state")); err != nil {
		return err
	}

	for _, ln := range []net.Listener{uln, tln} {
		if err := echo(ln); err != nil {
			return fmt.Errorf("%s: %w", ln.Addr().Network(), err)
		}
	}
	return nil
}

// echo connects to ln, accepts, and passes a line across.
func echo(ln net.Listener) error {
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		_, err = c.Read(buf)
		if err == nil && string(buf) != "hello" {
			err = fmt.Errorf("read %q", buf)
		}
		got <- err
	}()
	c, err := net.DialTimeout(ln.Addr().Network(), ln.Addr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	return <-got
}

// allThreadsFiltered checks /proc for the seccomp mode of each of pid's
// threads: 2 is SECCOMP_MODE_FILTER.
func allThreadsFiltered(pid int) error {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) < 2 {
		return fmt.Errorf("threads: %v %v", tasks, err)
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "\nSeccomp:\t2\n") {
			return fmt.Errorf("%s: not in filter mode", p)
		}
	}
	return nil
}

// runChild runs one case and returns its exit status and stderr; a
// child that says "confined" has its threads checked while it waits.
func runChild(t *testing.T, what string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSeccompChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TERN_SECCOMP_CHILD="+what, "TERN_SECCOMP_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line == "confined\n" {
		if err := allThreadsFiltered(cmd.Process.Pid); err != nil {
			t.Error(err)
		}
	}
	stdin.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("%s: child killed by %v; stderr:\n%s", what, ws.Signal(), stderr.String())
	}
	if cmd.ProcessState.ExitCode() == 4 {
		t.Skip("this test binary is built with cgo, which Install refuses; the project tests with CGO_ENABLED=0 (make test)")
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func TestInstalledFilterAllowsTheRunPhase(t *testing.T) {
	code, stderr := runChild(t, "run-phase")
	if code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr)
	}
}

// sigsysDeath checks that the child died of the filter's trap: the Go
// runtime exits 2 naming SIGSYS and the goroutine that made the call.
func sigsysDeath(t *testing.T, what, caller string) {
	t.Helper()
	code, stderr := runChild(t, what)
	if code != 2 || !strings.Contains(stderr, "SIGSYS: bad system call") {
		t.Fatalf("exit status %d, want 2 with SIGSYS; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, caller) {
		t.Errorf("the traceback does not name %s:\n%s", caller, stderr)
	}
}

func TestInstalledFilterTrapsAForbiddenSyscall(t *testing.T) {
	sigsysDeath(t, "exec", "os/exec.(*Cmd).Start")
}

func TestInstalledFilterTrapsAForbiddenIoctl(t *testing.T) {
	sigsysDeath(t, "ioctl", "seccomp_test.child")
}

func TestAuditModeLetsAForbiddenSyscallThrough(t *testing.T) {
	code, stderr := runChild(t, "audit-exec")
	if code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr)
	}
}
