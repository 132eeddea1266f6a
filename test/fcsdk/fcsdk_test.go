// Package fcsdk drives tern with the Firecracker Go SDK
// (github.com/firecracker-microvm/firecracker-go-sdk), as orchestrators
// written against it do: the SDK finds tern under the name firecracker on
// PATH, configures it through the API, starts, pauses, snapshots it, and
// loads the snapshot into a fresh process. It is a module of its own so
// that tern's go.mod does not carry the SDK's dependencies.
package fcsdk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	firecracker "github.com/firecracker-microvm/firecracker-go-sdk"
	"github.com/firecracker-microvm/firecracker-go-sdk/client/models"
	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/test/tinyguest"
)

// buildTern builds tern as dir/firecracker and puts dir first on PATH.
func buildTern(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "firecracker")
	// Built in tern's own module, with tern's own dependencies.
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tern")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return bin
}

// lastTick is the counter of the last tick line in a console file.
func lastTick(path string) int64 {
	b, _ := os.ReadFile(path)
	return tinyguest.LastTick(string(b))
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// command is how the SDK itself starts firecracker (its default builder),
// with the console captured in a file.
func command(ctx context.Context, t *testing.T, sock, id, console string) *exec.Cmd {
	out, err := os.Create(console)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	return firecracker.VMCommandBuilder{}.WithBin("firecracker").WithSocketPath(sock).
		AddArgs("--id", id, "--no-seccomp").WithStdout(out).WithStderr(out).Build(ctx)
}

func TestSDKLifecycle(t *testing.T) {
	tinyguest.RequireKVM(t)
	buildTern(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildCounter(dir, tinyguest.CounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetLevel(logrus.WarnLevel)

	sock1, cons1 := filepath.Join(dir, "one.sock"), filepath.Join(dir, "one.console")
	cfg := firecracker.Config{
		SocketPath:      sock1,
		VMID:            "sdk-one",
		KernelImagePath: kernel,
		KernelArgs:      "console=ttyS0",
		MachineCfg:      models.MachineConfiguration{VcpuCount: firecracker.Int64(1), MemSizeMib: firecracker.Int64(32), Smt: firecracker.Bool(false)},
	}
	m, err := firecracker.NewMachine(ctx, cfg, firecracker.WithProcessRunner(command(ctx, t, sock1, "sdk-one", cons1)), firecracker.WithLogger(logrus.NewEntry(log)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { m.StopVMM() })
	waitUntil(t, "the guest's ticks", func() bool { return lastTick(cons1) >= 0 })
	if err := m.PauseVM(ctx); err != nil {
		t.Fatalf("PauseVM: %v", err)
	}
	paused := lastTick(cons1)
	snap, mem := filepath.Join(dir, "vm.snap"), filepath.Join(dir, "vm.mem")
	if err := m.CreateSnapshot(ctx, mem, snap); err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if err := m.ResumeVM(ctx); err != nil {
		t.Fatalf("ResumeVM: %v", err)
	}
	waitUntil(t, "ticks after resuming", func() bool { return lastTick(cons1) > paused })
	if err := m.StopVMM(); err != nil {
		t.Fatalf("StopVMM: %v", err)
	}
	m.Wait(ctx) // the process is gone; its status is the signal's

	// A fresh tern loads the snapshot through WithSnapshot.
	sock2, cons2 := filepath.Join(dir, "two.sock"), filepath.Join(dir, "two.console")
	cfg2 := firecracker.Config{SocketPath: sock2, VMID: "sdk-two"}
	m2, err := firecracker.NewMachine(ctx, cfg2, firecracker.WithProcessRunner(command(ctx, t, sock2, "sdk-two", cons2)),
		firecracker.WithSnapshot(mem, snap, func(c *firecracker.SnapshotConfig) { c.ResumeVM = true }),
		firecracker.WithLogger(logrus.NewEntry(log)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Start(ctx); err != nil {
		t.Fatalf("Start with a snapshot: %v", err)
	}
	t.Cleanup(func() { m2.StopVMM() })
	waitUntil(t, "the loaded guest's ticks", func() bool { return lastTick(cons2) > paused })
	if b, _ := os.ReadFile(cons2); strings.Contains(string(b), tinyguest.CounterStartLine) {
		t.Errorf("the loaded guest started over: %q", b)
	}
	info, err := m2.DescribeInstanceInfo(ctx)
	if err != nil {
		t.Fatalf("DescribeInstanceInfo: %v", err)
	}
	if firecracker.StringValue(info.State) != "Running" {
		t.Errorf("instance state %q, want Running", firecracker.StringValue(info.State))
	}
}
