package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/test/fixture"
	"github.com/ternvm/tern/test/tinyguest"
)

// TestJailBadInput runs tern jail on inputs a user gets wrong: each fails
// with status 1 and one line naming the problem, before any jail is made.
func TestJailBadInput(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tern")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "jails")
	ok := []string{"jail", "--exec-file", exe, "--uid", "1000", "--gid", "1000", "--chroot-base-dir", base}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no id", []string{"jail", "--exec-file", exe, "--uid", "1", "--gid", "1"}, `Required flag "id" not set`},
		{"id with a dot", append(ok, "--id", "vm.1"), `--id "vm.1": '.' is not allowed`},
		{"id too long", append(ok, "--id", strings.Repeat("a", 65)), "65 characters long; the most is 64"},
		{"uid by name", []string{"jail", "--id", "a", "--exec-file", exe, "--uid", "tern", "--gid", "1"}, `--uid "tern" is not a number`},
		{"negative gid", []string{"jail", "--id", "a", "--exec-file", exe, "--uid", "1", "--gid", "-5"}, `--gid "-5" is not a number`},
		{"missing exec file", []string{"jail", "--id", "a", "--exec-file", filepath.Join(dir, "nope"), "--uid", "1", "--gid", "1"}, "--exec-file: stat " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"cgroup v1", append(ok, "--id", "a", "--cgroup-version", "1"), "tern jail supports cgroup v2 only"},
		{"cgroup version 3", append(ok, "--id", "a", "--cgroup-version", "3"), `--cgroup-version "3": only 2 is supported`},
		{"cgroup without =", append(ok, "--id", "a", "--cgroup", "memory.max"), `--cgroup "memory.max": want FILE=VALUE`},
		{"unknown resource", append(ok, "--id", "a", "--resource-limit", "cpu=1"), `unknown resource "cpu" (fsize or no-file)`},
		{"limit not a number", append(ok, "--id", "a", "--resource-limit", "no-file=lots"), `no-file="lots" is not a number`},
		{"missing bind", append(ok, "--id", "a", "--bind-ro", filepath.Join(dir, "vmlinux")), "bind: stat " + filepath.Join(dir, "vmlinux")},
		{"netns not a namespace", append(ok, "--id", "a", "--netns", exe), "is not a namespace file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runMain(append([]string{"tern"}, c.args...), &out, &errOut)
			msg := errOut.String()
			if code != 1 || !strings.Contains(msg, c.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, msg, c.want)
			}
			if strings.Count(strings.TrimRight(msg, "\n"), "\n") != 0 || !strings.HasPrefix(msg, "tern: ") {
				t.Errorf("stderr is not one 'tern: ...' line: %q", msg)
			}
		})
	}
	if _, err := os.Stat(base); err == nil {
		t.Errorf("a refused tern jail made %s", base)
	}
}

// jailFixture is a static tern and the tiny guests, built for the tests
// that run tern through the jail.
type jailFixture struct {
	tern, hello, halt string
}

func buildJailFixture(t *testing.T) jailFixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("tern jail needs root")
	}
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	root, err := fixture.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := jailFixture{tern: filepath.Join(dir, "bin", "tern")}
	if err := fixture.BuildStatic(ctx, root, "./cmd/tern", f.tern); err != nil {
		t.Fatal(err)
	}
	if f.hello, err = tinyguest.BuildHello(dir); err != nil {
		t.Fatal(err)
	}
	if f.halt, err = tinyguest.BuildHalt(dir); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestJailBootsTinyGuest boots the hello guest with a real tern binary
// through tern jail: the kernel is bound read-only into the jail, tern
// runs as an unprivileged uid in new namespaces on the jail's /dev/kvm,
// makes its API socket in the jail's root, and the guest's console line
// comes out on tern jail's stdout; the guest's poweroff is tern jail's
// exit status 0.
func TestJailBootsTinyGuest(t *testing.T) {
	f := buildJailFixture(t)
	base := t.TempDir()
	// A relative --exec-file means the file where tern jail was started.
	cmd := exec.Command(f.tern, "jail", "--id", "tiny-1", "--exec-file", "./tern", "--uid", "4321", "--gid", "4322",
		"--chroot-base-dir", base, "--new-pid-ns", "--resource-limit", "no-file=256",
		"--bind-ro", f.hello+":/guest/hello.elf",
		"--", "run", "--kernel", "/guest/hello.elf", "--pvh", "--memory", "32M", "--api-socket", "/api.sock")
	cmd.Dir = filepath.Dir(f.tern)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := runWithin(t, cmd, 60*time.Second)
	if err != nil {
		t.Fatalf("tern jail ... run: %v\nstdout %q\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if got := stdout.String(); got != tinyguest.HelloLine+"\n" {
		t.Errorf("console through the jail = %q, want %q (stderr:\n%s)", got, tinyguest.HelloLine+"\n", stderr.String())
	}
	root := filepath.Join(base, "tern", "tiny-1", "root")
	if b, err := os.ReadFile(filepath.Join(root, "tern.pid")); err != nil || len(bytes.TrimSpace(b)) == 0 {
		t.Errorf("no PID file in the jail: %q, %v", b, err)
	}
	// The jail's root belongs to the jailed uid, so tern could make its
	// socket there (and removed it at exit).
	var st syscall.Stat_t
	if err := syscall.Stat(root, &st); err != nil || st.Uid != 4321 || st.Gid != 4322 {
		t.Errorf("jail root %s owned by %d:%d (%v), want 4321:4322", root, st.Uid, st.Gid, err)
	}
}

// TestJailDaemonizes starts the halt guest through tern jail --daemonize
// --new-pid-ns: tern jail returns at once, the jailed tern runs on in a
// session of its own with stdio on /dev/null, writes its console into the
// jail, serves its API on a socket there, snapshots into the jail (which
// reads its /proc/self/pagemap: the jail's /proc), and ends on SIGTERM.
func TestJailDaemonizes(t *testing.T) {
	f := buildJailFixture(t)
	base := t.TempDir()
	cmd := exec.Command(f.tern, "jail", "--id", "halt-1", "--exec-file", f.tern, "--uid", "4321", "--gid", "4322",
		"--chroot-base-dir", base, "--daemonize", "--new-pid-ns", "--bind-ro", f.halt,
		"--", "run", "--kernel", "/halt.elf", "--pvh", "--memory", "32M", "--console", "/console.log", "--api-socket", "/api.sock")
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Fatalf("tern jail --daemonize: %v, output %q; want a silent success", err, out)
	}
	root := filepath.Join(base, "tern", "halt-1", "root")
	b, err := os.ReadFile(filepath.Join(root, "tern.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("PID file: %q", b)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	console := filepath.Join(root, "console.log")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(console)
		if strings.Contains(string(b), tinyguest.HaltLine) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemonized guest's console %s never showed %q: %q", console, tinyguest.HaltLine, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command's closing parenthesis: state ppid pgrp session.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if fields[3] != strconv.Itoa(pid) {
		t.Errorf("daemonized tern %d is in session %s, want a session of its own", pid, fields[3])
	}
	for _, fd := range []string{"0", "1", "2"} {
		if l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd); l != "/dev/null" {
			t.Errorf("daemonized tern's fd %s is %q, want /dev/null", fd, l)
		}
	}
	// The snapshot's directory is a path inside the jail.
	snap := exec.Command(f.tern, "snapshot", "create", "--api-socket", filepath.Join(root, "api.sock"), "--dir", "/snap")
	if out, err := snap.CombinedOutput(); err != nil {
		t.Errorf("tern snapshot create of the jailed VM: %v\n%s", err, out)
	} else if _, err := os.Stat(filepath.Join(root, "snap", "vmstate")); err != nil {
		t.Errorf("the snapshot is not in the jail: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline = time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		// Its parent is gone; init (or a subreaper) reaps it.
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); bytes.Contains(st, []byte(") Z ")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemonized tern still runs 10 s after SIGTERM")
		}
	}
}

// TestJailForwardsSIGTERM runs the halt guest through tern jail in the
// foreground and sends SIGTERM to tern jail: the jailed tern (PID 1 of its
// own PID namespace) gets it, stops the VM, and tern jail exits with the
// status tern gives a stop by that signal, 128+15.
func TestJailForwardsSIGTERM(t *testing.T) {
	f := buildJailFixture(t)
	base := t.TempDir()
	cmd := exec.Command(f.tern, "jail", "--id", "halt-2", "--exec-file", f.tern, "--uid", "4321", "--gid", "4322",
		"--chroot-base-dir", base, "--new-pid-ns", "--bind-ro", f.halt,
		"--", "run", "--kernel", "/halt.elf", "--pvh", "--memory", "32M")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), tinyguest.HaltLine) {
		if time.Now().After(deadline) {
			t.Fatalf("the jailed guest never printed %q; stderr:\n%s", tinyguest.HaltLine, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 128+15 {
		t.Errorf("tern jail after SIGTERM: %v, exit %d; want 143\nstderr:\n%s", err, cmd.ProcessState.ExitCode(), stderr.String())
	}
	if !strings.Contains(stderr.String(), `msg="stopping the VM" signal=terminated`) {
		t.Errorf("the jailed tern did not log that SIGTERM stopped it:\n%s", stderr.String())
	}
}

// syncBuffer is a buffer a test reads while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestJailNeedsRoot runs tern jail as an ordinary user: it refuses, saying
// why, before making anything.
func TestJailNeedsRoot(t *testing.T) {
	f := buildJailFixture(t)
	// A copy of tern that an ordinary user may run (t.TempDir is 0700).
	dir, err := os.MkdirTemp("", "tern-jail-noroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tern := filepath.Join(dir, "tern")
	b, err := os.ReadFile(f.tern)
	if err == nil {
		err = os.WriteFile(tern, b, 0o755)
	}
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "jails")
	cmd := exec.Command(tern, "jail", "--id", "a", "--exec-file", tern, "--uid", "4321", "--gid", "4322", "--chroot-base-dir", base)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "tern jail must run as root") {
		t.Errorf("tern jail as nobody: %v, %q; want a refusal naming root", err, out)
	}
	if _, err := os.Stat(filepath.Join(base, "tern")); err == nil {
		t.Error("a refused tern jail made the jail directory")
	}
}

// runWithin runs cmd, killing it after limit.
func runWithin(t *testing.T, cmd *exec.Cmd, limit time.Duration) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		return err
	}
	timer := time.AfterFunc(limit, func() { cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}

// TestJailStageMarkerAlone runs tern with the jail's stage marker in its
// environment but not started by tern jail: it refuses rather than read
// or write descriptors it was never given.
func TestJailStageMarkerAlone(t *testing.T) {
	f := buildJailFixture(t)
	cmd := exec.Command(f.tern, "version")
	cmd.Env = append(os.Environ(), "TERN_JAIL_STAGE2=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not started by tern jail") {
		t.Errorf("tern with a stray TERN_JAIL_STAGE2: %v, %q; want a refusal", err, out)
	}
}
