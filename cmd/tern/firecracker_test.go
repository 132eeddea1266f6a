package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/internal/seccomp"
	"github.com/ternvm/tern/test/tinyguest"
)

// The child half of the tests that run tern firecracker as a process of
// its own: TERN_FC_ARGS holds its command line as JSON.
func TestFirecrackerChild(t *testing.T) {
	args := os.Getenv("TERN_FC_ARGS")
	if args == "" {
		t.Skip("run by the firecracker process tests")
	}
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		os.Exit(99)
	}
	ignoreSIGPIPE()
	os.Exit(runMain(argv, os.Stdout, os.Stderr))
}

// runFirecracker runs argv in a child process and returns its exit
// status, stdout and stderr.
func runFirecracker(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	b, _ := json.Marshal(argv)
	cmd := exec.Command(os.Args[0], "-test.run=^TestFirecrackerChild$")
	cmd.Env = append(os.Environ(), "TERN_FC_ARGS="+string(b))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestFirecrackerVersionLine: Kata reads the second field of the first
// line as a semantic version.
func TestFirecrackerVersionLine(t *testing.T) {
	semver := regexp.MustCompile(`^Firecracker v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	for _, argv := range [][]string{{"tern", "firecracker", "--version"}, {"/usr/local/bin/firecracker", "--version"}} {
		var out, errb bytes.Buffer
		if code := runMain(argv, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", argv, code, errb.String())
		}
		first, _, _ := strings.Cut(out.String(), "\n")
		if !semver.MatchString(first) {
			t.Errorf("%v: first line %q is not \"Firecracker vX.Y.Z\"", argv, first)
		}
	}
}

// TestFirecrackerExitCodes checks Firecracker's statuses for bad
// arguments (153) and a bad configuration file (152), and a plain
// failure (1) for an API socket path that exists.
func TestFirecrackerExitCodes(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists.sock")
	os.WriteFile(exists, nil, 0o600)
	badCfg := filepath.Join(dir, "bad.json")
	os.WriteFile(badCfg, []byte(`{"machine-config": {"vcpu_count": 1, "mem_size_mib": 32}, "boot-source": {"kernel_image_path": "/nonexistent/vmlinux"}}`), 0o600)
	unknownKey := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknownKey, []byte(`{"machine_config": {}}`), 0o600)
	cases := []struct {
		name string
		argv []string
		code int
		want string
	}{
		{"no-api without config", []string{"tern", "firecracker", "--no-api"}, 153, "--no-api needs --config-file"},
		{"unknown flag", []string{"tern", "firecracker", "--api-socket", "x"}, 153, "flag provided but not defined"},
		{"socket exists", []string{"tern", "firecracker", "--api-sock", exists}, 1, exists + " already exists"},
		{"bad config", []string{"tern", "firecracker", "--no-api", "--config-file", badCfg}, 152, "kernel_image_path"},
		{"unknown config key", []string{"tern", "firecracker", "--no-api", "--config-file", unknownKey}, 152, `unknown field "machine_config"`},
		{"bad level", []string{"tern", "firecracker", "--level", "Loud", "--no-api", "--config-file", badCfg}, 153, `level "Loud"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runMain(tc.argv, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.want)
			}
		})
	}
	if _, err := os.Stat(exists); err != nil {
		t.Errorf("the existing file at --api-sock is gone: %v", err)
	}
}

// TestFirecrackerConfigFileNoAPI boots the hello guest from a
// configuration file, in a process of its own, with no API: the guest
// prints its line and powers off, and the process exits 0.
func TestFirecrackerConfigFileNoAPI(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildHello(dir)
	if err != nil {
		t.Fatal(err)
	}
	metrics := filepath.Join(dir, "metrics")
	cfg := filepath.Join(dir, "vm.json")
	os.WriteFile(cfg, []byte(`{
  "boot-source": {"kernel_image_path": "`+kernel+`", "boot_args": "console=ttyS0"},
  "drives": [],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 32, "smt": false},
  "metrics": {"metrics_path": "`+metrics+`"}
}`), 0o600)
	code, out, errOut := runFirecracker(t, "firecracker", "--no-api", "--config-file", cfg, "--id", "cfgvm", "--no-seccomp")
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut)
	}
	if out != tinyguest.HelloLine+"\n" {
		t.Errorf("stdout (the guest's console) = %q, want %q", out, tinyguest.HelloLine+"\n")
	}
	line, err := os.ReadFile(metrics)
	if err != nil || !json.Valid(bytes.TrimSpace(line)) {
		t.Errorf("metrics at exit: %q, %v; want a JSON line", line, err)
	}
}

// fcSeccomp says whether tern firecracker child processes of this test
// binary can run with tern's seccomp filter (on by default), and the
// flags they need: a test binary built with cgo cannot.
func fcSeccomp(t *testing.T) (filtered bool, flags []string) {
	if seccomp.Usable() != nil {
		t.Log("this test binary is built with cgo: its tern firecracker runs with --no-seccomp (make test builds with CGO_ENABLED=0 and runs it filtered)")
		return false, []string{"--no-seccomp"}
	}
	return true, nil
}

// seccompMode is the Seccomp field of /proc/PID/status.
func seccompMode(t *testing.T, pid int) string {
	t.Helper()
	v, err := procStatus(fmt.Sprintf("/proc/%d/status", pid), "Seccomp")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// startFirecracker starts tern firecracker in a child process and waits
// for its API socket.
func startFirecracker(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	b, _ := json.Marshal(argv)
	cmd := exec.Command(os.Args[0], "-test.run=^TestFirecrackerChild$")
	cmd.Env = append(os.Environ(), "TERN_FC_ARGS="+string(b))
	cmd.Stderr = &bytes.Buffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// waitUntil polls cond for up to 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// lastTickIn is the counter of the last tick line in a console file.
func lastTickIn(path string) int64 {
	b, _ := os.ReadFile(path)
	return tinyguest.LastTick(string(b))
}

// exitCode waits for cmd and returns its exit status.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatalf("process did not exit; stderr: %s", cmd.Stderr)
		return -1
	}
}

// TestFirecrackerProcessSnapshotAcrossProcesses configures a counter guest
// through the API of one tern firecracker process, snapshots it, stops
// that process with SIGHUP (Firecracker's status 156), and loads the
// snapshot in a second process, where the guest counts on.
func TestFirecrackerProcessSnapshotAcrossProcesses(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildCounter(dir, tinyguest.CounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sock1, serial1 := filepath.Join(dir, "fc1.sock"), filepath.Join(dir, "serial1")
	filtered, noSeccomp := fcSeccomp(t)
	p1 := startFirecracker(t, append([]string{"tern", "firecracker", "--api-sock", sock1, "--id", "one"}, noSeccomp...)...)
	waitUntil(t, "the API socket", func() bool { _, err := apiCall(sock1, "GET", "/", ""); return err == nil })
	for _, r := range [][3]string{
		{"PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 32}`},
		{"PUT", "/boot-source", `{"kernel_image_path": "` + kernel + `"}`},
		{"PUT", "/serial", `{"serial_out_path": "` + serial1 + `"}`},
		{"PUT", "/actions", `{"action_type": "InstanceStart"}`},
	} {
		if _, err := apiCall(sock1, r[0], r[1], r[2]); err != nil {
			t.Fatalf("%s %s: %v", r[0], r[1], err)
		}
	}
	waitUntil(t, "ticks in the serial file", func() bool { return lastTickIn(serial1) >= 0 })
	if filtered {
		// What follows (pause, snapshot create, SIGHUP) then runs under
		// the filter, as it does for a user.
		if mode := seccompMode(t, p1.Process.Pid); mode != "2" {
			t.Errorf("tern firecracker's seccomp mode after InstanceStart is %q, want 2 (filter)", mode)
		}
	}
	snap, mem := filepath.Join(dir, "snap"), filepath.Join(dir, "mem")
	if _, err := apiCall(sock1, "PATCH", "/vm", `{"state": "Paused"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := apiCall(sock1, "PUT", "/snapshot/create", `{"snapshot_path": "`+snap+`", "mem_file_path": "`+mem+`"}`); err != nil {
		t.Fatal(err)
	}
	paused := lastTickIn(serial1)
	p1.Process.Signal(syscall.SIGHUP)
	if code := exitCode(t, p1); code != 156 {
		t.Errorf("after SIGHUP the first process exited %d, want 156", code)
	}
	if _, err := os.Lstat(sock1); err == nil {
		t.Errorf("the first process left its API socket behind")
	}

	sock2, serial2 := filepath.Join(dir, "fc2.sock"), filepath.Join(dir, "serial2")
	p2 := startFirecracker(t, append([]string{"tern", "firecracker", "--api-sock", sock2, "--id", "two"}, noSeccomp...)...)
	waitUntil(t, "the second API socket", func() bool { _, err := apiCall(sock2, "GET", "/", ""); return err == nil })
	if _, err := apiCall(sock2, "PUT", "/serial", `{"serial_out_path": "`+serial2+`"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := apiCall(sock2, "PUT", "/snapshot/load", `{"snapshot_path": "`+snap+`", "mem_file_path": "`+mem+`", "resume_vm": true}`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the loaded guest's ticks", func() bool { return lastTickIn(serial2) > paused })
	if b, _ := os.ReadFile(serial2); strings.Contains(string(b), tinyguest.CounterStartLine) {
		t.Errorf("the loaded guest started over: %q", b)
	}
	out, _ := apiCall(sock2, "GET", "/", "")
	if !strings.Contains(out, `"state":"Running"`) || !strings.Contains(out, `"id":"two"`) {
		t.Errorf("GET / = %s, want id two, Running", out)
	}
	p2.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, p2); code != 128+int(syscall.SIGTERM) {
		t.Errorf("after SIGTERM the second process exited %d, want %d", code, 128+int(syscall.SIGTERM))
	}
}
