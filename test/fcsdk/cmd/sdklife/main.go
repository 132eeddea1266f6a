// Command sdklife drives tern through the Firecracker Go SDK as an
// orchestrator would, for the end-to-end scenario fcsdk.sh in the nested
// test host: NewMachine with a kernel, an initrd, a root drive, a TAP
// interface and vsock; Start; pause, CreateSnapshot, resume; Shutdown
// (Ctrl+Alt+Del; StopVMM if the SDK reports it failed, which the scenario
// counts as a failure); the process exits; then a fresh machine loads the
// snapshot through WithSnapshot.
//
// The SDK finds tern as firecracker on PATH. Between steps the program
// prints "step=NAME" and waits for a line on stdin, so that the scenario
// can check the guest from outside (ping, vsock, its console) before it
// goes on. What it saw goes to stdout as key=value lines; a failed SDK
// call prints error=... and exits 1.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	firecracker "github.com/firecracker-microvm/firecracker-go-sdk"
	"github.com/firecracker-microvm/firecracker-go-sdk/client/models"
	"github.com/sirupsen/logrus"
)

type options struct {
	dir, kernel, initrd, root, tap, mac, cmdline string
	memMiB                                       int64
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "", "working directory: sockets, console files, snapshot")
	flag.StringVar(&o.kernel, "kernel", "", "guest kernel")
	flag.StringVar(&o.initrd, "initrd", "", "guest initramfs")
	flag.StringVar(&o.root, "root", "", "root drive image")
	flag.StringVar(&o.tap, "tap", "", "TAP interface (exists already)")
	flag.StringVar(&o.mac, "mac", "02:00:00:00:00:02", "guest MAC")
	flag.StringVar(&o.cmdline, "cmdline", "", "kernel command line")
	flag.Int64Var(&o.memMiB, "mem", 256, "guest memory in MiB")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Printf("error=%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	fmt.Println("step=done")
}

var stdin = bufio.NewScanner(os.Stdin)

// step reports where the program is and waits for the scenario's go.
func step(name string) {
	fmt.Printf("step=%s\n", name)
	if !stdin.Scan() {
		fmt.Println("error=stdin closed")
		os.Exit(1)
	}
}

// consoleFiles makes the files a machine's console (stdout) and
// stderr go to.
func consoleFiles(console string) (*os.File, *os.File, error) {
	out, err := os.Create(console)
	if err != nil {
		return nil, nil, err
	}
	errf, err := os.Create(console + ".err")
	if err != nil {
		out.Close()
		return nil, nil, err
	}
	return out, errf, nil
}

// printMetrics prints tern's Prometheus counters for the drives, the
// network interfaces and the vCPUs as "metric NAME{LABELS}=VALUE" lines.
func printMetrics(ctx context.Context, sock string) error {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://localhost/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "firecracker_block_") || strings.HasPrefix(l, "firecracker_net_") || strings.HasPrefix(l, "firecracker_vcpu_") {
			if name, value, ok := strings.Cut(l, " "); ok {
				fmt.Printf("metric %s=%s\n", name, value)
			}
		}
	}
	return sc.Err()
}

func run(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetLevel(logrus.WarnLevel)
	entry := logrus.NewEntry(log)

	vsock := o.dir + "/v.sock"
	sock1 := o.dir + "/sdk1.sock"
	out1, err1, err := consoleFiles(o.dir + "/one.out")
	if err != nil {
		return err
	}
	cfg := firecracker.Config{
		SocketPath:      sock1,
		VMID:            "sdk-one",
		KernelImagePath: o.kernel,
		InitrdPath:      o.initrd,
		KernelArgs:      o.cmdline,
		Drives:          firecracker.NewDrivesBuilder(o.root).Build(),
		NetworkInterfaces: firecracker.NetworkInterfaces{{
			StaticConfiguration: &firecracker.StaticNetworkConfiguration{MacAddress: o.mac, HostDevName: o.tap},
		}},
		VsockDevices: []firecracker.VsockDevice{{Path: vsock, CID: 3}},
		MachineCfg:   models.MachineConfiguration{VcpuCount: firecracker.Int64(1), MemSizeMib: firecracker.Int64(o.memMiB), Smt: firecracker.Bool(false)},
	}
	// Started as SDK users start firecracker: the SDK's own builder.
	cmd1 := firecracker.VMCommandBuilder{}.WithBin("firecracker").WithSocketPath(sock1).
		AddArgs("--id", "sdk-one").WithStdout(out1).WithStderr(err1).Build(ctx)
	m, err := firecracker.NewMachine(ctx, cfg, firecracker.WithProcessRunner(cmd1), firecracker.WithLogger(entry))
	if err != nil {
		return fmt.Errorf("NewMachine: %w", err)
	}
	if err := m.Start(ctx); err != nil {
		return fmt.Errorf("Start: %w", err)
	}
	fmt.Println("start=ok")
	if info, err := m.DescribeInstanceInfo(ctx); err == nil {
		fmt.Printf("state=%s\n", firecracker.StringValue(info.State))
	} else {
		return fmt.Errorf("DescribeInstanceInfo: %w", err)
	}
	step("started")

	if err := m.PauseVM(ctx); err != nil {
		return fmt.Errorf("PauseVM: %w", err)
	}
	snap, mem := o.dir+"/vm.snap", o.dir+"/vm.mem"
	if err := m.CreateSnapshot(ctx, mem, snap); err != nil {
		return fmt.Errorf("CreateSnapshot: %w", err)
	}
	fmt.Println("snapshot=ok")
	// tern's GET /metrics (not the SDK's: Firecracker has none), read
	// while the guest is paused after its traffic.
	if err := printMetrics(ctx, sock1); err != nil {
		return fmt.Errorf("GET /metrics: %w", err)
	}
	step("snapshot")

	if err := m.ResumeVM(ctx); err != nil {
		return fmt.Errorf("ResumeVM: %w", err)
	}
	fmt.Println("resume=ok")
	step("resumed")

	// Shutdown is the SDK's Ctrl+Alt+Del: the guest's kernel reboots
	// (reboot=k) and tern, like Firecracker, exits.
	how := "ctrl-alt-del"
	if err := m.Shutdown(ctx); err != nil {
		fmt.Printf("shutdown-error=%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		how = "stopvmm"
		if err := m.StopVMM(); err != nil {
			return fmt.Errorf("StopVMM: %w", err)
		}
	}
	fmt.Printf("shutdown=%s\n", how)
	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	werr := m.Wait(waitCtx)
	timedOut := waitCtx.Err() != nil
	waitCancel()
	if timedOut {
		return fmt.Errorf("the firecracker process did not exit within 60 s of %s", how)
	}
	// The SDK's own words for how the process ended, on one line.
	fmt.Printf("exit=%s\n", strings.Join(strings.Fields(fmt.Sprint(werr)), " "))
	out1.Close()
	err1.Close()
	step("stopped")

	// A fresh tern loads the snapshot.
	sock2 := o.dir + "/sdk2.sock"
	out2, err2, err := consoleFiles(o.dir + "/two.out")
	if err != nil {
		return err
	}
	cmd2 := firecracker.VMCommandBuilder{}.WithBin("firecracker").WithSocketPath(sock2).
		AddArgs("--id", "sdk-two").WithStdout(out2).WithStderr(err2).Build(ctx)
	m2, err := firecracker.NewMachine(ctx, firecracker.Config{SocketPath: sock2, VMID: "sdk-two"},
		firecracker.WithProcessRunner(cmd2), firecracker.WithLogger(entry),
		firecracker.WithSnapshot(mem, snap, func(c *firecracker.SnapshotConfig) { c.ResumeVM = true }))
	if err != nil {
		return fmt.Errorf("NewMachine with a snapshot: %w", err)
	}
	if err := m2.Start(ctx); err != nil {
		return fmt.Errorf("Start with a snapshot: %w", err)
	}
	fmt.Println("load=ok")
	if info, err := m2.DescribeInstanceInfo(ctx); err == nil {
		fmt.Printf("loaded-state=%s\n", firecracker.StringValue(info.State))
	} else {
		return fmt.Errorf("DescribeInstanceInfo after the load: %w", err)
	}
	step("loaded")

	if err := m2.StopVMM(); err != nil {
		return fmt.Errorf("StopVMM: %w", err)
	}
	waitCtx, waitCancel = context.WithTimeout(ctx, 60*time.Second)
	defer waitCancel()
	if m2.Wait(waitCtx); waitCtx.Err() != nil {
		return fmt.Errorf("the second firecracker process did not exit within 60 s of StopVMM")
	}
	return nil
}
