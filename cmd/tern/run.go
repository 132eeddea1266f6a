package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/boot/cputemplate"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/vmm"
	"github.com/urfave/cli/v2"
)

// defaultMemory is tern run's guest RAM without --memory.
const defaultMemory = "256M"

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "boot a microVM and run it until the guest powers off",
		ArgsUsage: " ",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "kernel", Usage: "guest kernel: an ELF vmlinux or a bzImage", Required: true},
			&cli.StringFlag{Name: "initrd", Usage: "initial ramdisk (optional)"},
			&cli.StringFlag{Name: "cmdline", Usage: "kernel command line (default: " + vmm.DefaultCmdline + ")"},
			&cli.IntFlag{Name: "cpus", Value: vmm.DefaultCPUs, Usage: "number of vCPUs"},
			&cli.StringFlag{Name: "memory", Value: defaultMemory, Usage: "guest RAM, e.g. 128M or 2G"},
			consoleFlag(), consoleRawFlag(),
			&cli.StringSliceFlag{Name: "disk", Usage: "virtio-blk disk: path=FILE[,ro=on][,id=SERIAL][,root=on][,bw=SIZE][,iops=N][,bw_burst=SIZE][,iops_burst=N][,refill=DURATION] (repeatable; bw is bytes per second)"},
			&cli.StringSliceFlag{Name: "net", Usage: "virtio-net on a TAP: tap=NAME[,mac=MAC][,bridge=BRIDGE][,id=ID][,mmds=on][,rx_bw=SIZE][,tx_bw=SIZE][,rx_pps=N][,tx_pps=N][,{rx,tx}_{bw,pps}_burst=..][,refill=DURATION] (repeatable; the TAP is created if missing)"},
			&cli.StringFlag{Name: "vsock", Usage: "virtio-vsock: cid=N,socket=PATH (host programs connect to PATH; guest connections to port P reach PATH_P)"},
			&cli.StringFlag{Name: "balloon", Usage: "virtio-balloon: size=SIZE[,deflate_on_oom=on][,stats=DURATION] (size is the initial target)"},
			&cli.StringFlag{Name: "mmds-data", Usage: "serve this JSON file to the guest as Firecracker's metadata service (MMDS) at 169.254.169.254, on the --net devices with mmds=on"},
			&cli.IntFlag{Name: "mmds-version", Value: 1, Usage: "MMDS version: 1 (plain GETs) or 2 (session tokens from PUT /latest/api/token)"},
			&cli.StringFlag{Name: "api-socket", Usage: "serve the VM's HTTP API on this Unix socket (see tern balloon)"},
			&cli.BoolFlag{Name: "rng", Usage: "add a virtio entropy device fed from the host's getrandom"},
			&cli.StringFlag{Name: "rng-bw", Usage: "limit the entropy device to SIZE random bytes per second, e.g. 1M (implies --rng)"},
			&cli.BoolFlag{Name: "track-dirty-pages", Usage: "log the pages the guest writes, for diff snapshots (tern snapshot create --diff)"},
			&cli.BoolFlag{Name: "huge-pages", Usage: "back guest RAM with huge pages (hugetlbfs pages must be reserved)"},
			&cli.StringFlag{Name: "cpu-template", Usage: "pin the CPU the guest sees, so it can later move to a host of another model: T2, T2S or C3 (Intel hosts), T2A (AMD hosts), None, or FILE.json, a Firecracker custom CPU template"},
			&cli.StringFlag{Name: "kvm", Value: vmm.DefaultKVMPath, Usage: "KVM device"},
			cacheDirFlag(),
			&cli.BoolFlag{Name: "pvh", Usage: "enter an ELF kernel through its PVH entry note instead of its 64-bit entry"},
		}, seccompFlags()...),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all options are flags; see tern run --help)", c.Args().First())
	}
	mem, err := parseSize(c.String("memory"))
	if err != nil {
		return fmt.Errorf("--memory: %w", err)
	}
	cfg := vmm.Config{
		KernelPath:      c.String("kernel"),
		InitrdPath:      c.String("initrd"),
		Cmdline:         c.String("cmdline"),
		CPUs:            c.Int("cpus"),
		MemoryBytes:     mem,
		HugePages:       c.Bool("huge-pages"),
		PreferPVH:       c.Bool("pvh"),
		RNG:             c.Bool("rng"),
		KVMPath:         c.String("kvm"),
		HostCacheDir:    c.String("cache-dir"),
		TrackDirtyPages: c.Bool("track-dirty-pages"),
		Logger:          logger,
		Started:         started,
	}
	if cfg.CPUTemplate, err = parseCPUTemplate(c.String("cpu-template")); err != nil {
		return err
	}
	if s := c.String("rng-bw"); s != "" {
		if cfg.RNGRateLimit, err = parseRNGLimit(s); err != nil {
			return err
		}
		cfg.RNG = true
	}
	for _, spec := range c.StringSlice("disk") {
		d, err := parseDisk(spec)
		if err != nil {
			return err
		}
		cfg.Disks = append(cfg.Disks, d)
	}
	var mmdsNets []string
	for i, spec := range c.StringSlice("net") {
		n, err := parseNet(spec)
		if err != nil {
			return err
		}
		cfg.Nets = append(cfg.Nets, n.Config)
		if n.MMDS {
			mmdsNets = append(mmdsNets, fmt.Sprintf("net%d", i))
		}
	}
	if cfg.MMDS, err = mmdsConfig(c.String("mmds-data"), c.Int("mmds-version"), mmdsNets); err != nil {
		return err
	}
	if spec := c.String("vsock"); spec != "" {
		if cfg.Vsock, err = parseVsock(spec); err != nil {
			return err
		}
	}
	if spec := c.String("balloon"); spec != "" {
		if cfg.Balloon, err = parseBalloon(spec); err != nil {
			return err
		}
	}
	if cfg.BeforeRun, err = seccompHook(c); err != nil {
		return err
	}
	if cfg.CPUs < 1 {
		return fmt.Errorf("--cpus: %d is not a positive number of vCPUs", cfg.CPUs)
	}
	var closeConsole func()
	if cfg.Console, cfg.ConsoleInput, closeConsole, err = openConsole(c.String("console"), c.Bool("console-raw")); err != nil {
		return err
	}
	defer closeConsole()

	apiSock, err := openAPI(c.String("api-socket"))
	if err != nil {
		return err
	}
	vm, err := vmm.New(cfg)
	if err != nil {
		apiSock.close()
		return err
	}
	defer vm.Close()
	return runUntilStopped(vm, apiSock)
}

// runUntilStopped serves the API (if asked) and runs vm until the guest
// stops or a signal arrives, turning the outcome into tern's exit status.
func runUntilStopped(vm *vmm.VM, apiSock *apiSocket) error {
	defer apiSock.serve(vm)()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The stop signals are caught while Start runs, not before it: a
	// process's first signal.Notify takes about 0.25 ms here (the Go
	// runtime starts a thread for the signal masks and hands it the
	// signals one at a time), which Start spends waiting for the boot
	// vCPU to enter the guest. A stop signal before that ends tern
	// uncaught, as one during New does.
	sigs := make(chan os.Signal, 1)
	caught := make(chan struct{})
	go func() {
		signal.Notify(sigs, stopSignals()...)
		close(caught)
	}()
	startErr := vm.Start()
	<-caught
	defer signal.Stop(sigs)
	if startErr != nil {
		return &exitError{code: 2, err: fmt.Errorf("VM failed: %w", startErr)}
	}
	var got os.Signal
	go func() {
		select {
		case got = <-sigs:
			logger.WithField("signal", got.String()).Info("stopping the VM")
			cancel()
		case <-ctx.Done():
		}
	}()

	reason, err := vm.Wait(ctx)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("VM failed: %w", err)}
	}
	logger.WithFields(logrus.Fields{"reason": reason.String()}).Info("VM stopped")
	if reason == vmm.StopRequested {
		if s, ok := got.(syscall.Signal); ok {
			return &exitError{code: 128 + int(s)}
		}
	}
	return nil
}

// consoleFlag is --console of every command that runs a guest; openConsole
// reads it.
func consoleFlag() cli.Flag {
	return &cli.StringFlag{Name: "console", Value: "stdio", Usage: "guest serial console: stdio, none, or the path of a file (created 0600) or FIFO to write"}
}

// consoleRawFlag is --console-raw, read with --console by openConsole.
func consoleRawFlag() cli.Flag {
	return &cli.BoolFlag{Name: "console-raw", Usage: "with --console stdio, pass the guest's terminal control sequences (colours, titles, clipboard writes) to this terminal unfiltered"}
}

// openConsole opens the guest's serial console as --console says: its
// output, its input (nil for none) and what to close at the end. On stdio
// the guest's terminal control sequences are filtered out unless raw.
func openConsole(spec string, raw bool) (io.Writer, io.Reader, func(), error) {
	switch spec {
	case "stdio":
		if raw {
			return os.Stdout, os.Stdin, func() {}, nil
		}
		return newTermFilter(os.Stdout), os.Stdin, func() {}, nil
	case "none":
		return io.Discard, nil, func() {}, nil
	case "":
		return nil, nil, nil, fmt.Errorf("--console: empty; use stdio, none or a file path")
	}
	f, err := openConsoleFile(spec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--console: %w", err)
	}
	return f, nil, func() { f.Close() }, nil
}

// maxTemplateFile bounds a custom CPU template file; real ones are a few
// KiB.
const maxTemplateFile = 1 << 20

// parseCPUTemplate reads --cpu-template: a static template's name, or the
// path of a custom template (anything with a / or ending in .json).
func parseCPUTemplate(arg string) (*cputemplate.Template, error) {
	if arg == "" {
		return nil, nil
	}
	if !strings.Contains(arg, "/") && !strings.HasSuffix(arg, ".json") {
		t, err := cputemplate.Static(arg)
		if err != nil {
			return nil, fmt.Errorf("--cpu-template: %w (or give FILE.json, a custom template)", err)
		}
		return t, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, fmt.Errorf("--cpu-template: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTemplateFile+1))
	if err != nil {
		return nil, fmt.Errorf("--cpu-template: %w", err)
	}
	if len(data) > maxTemplateFile {
		return nil, fmt.Errorf("--cpu-template: %s is larger than %d bytes", arg, maxTemplateFile)
	}
	t, err := cputemplate.ParseCustom(data)
	if err != nil {
		return nil, fmt.Errorf("--cpu-template %s: %w", arg, err)
	}
	return t, nil
}

// mmdsConfig is the metadata service --mmds-data and the nets with mmds=on
// ask for; nil when neither does.
func mmdsConfig(path string, version int, nets []string) (*vmm.MMDS, error) {
	switch {
	case path == "" && len(nets) == 0:
		return nil, nil
	case path == "":
		return nil, fmt.Errorf("--net mmds=on needs --mmds-data FILE")
	case len(nets) == 0:
		return nil, fmt.Errorf("--mmds-data: no --net has mmds=on, so the guest could not reach it")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--mmds-data: %w", err)
	}
	store := mmds.NewStore(0)
	if err := store.Put(data); err != nil {
		return nil, fmt.Errorf("--mmds-data %s: %w", path, err)
	}
	return &vmm.MMDS{Config: mmds.Config{Version: version, Interfaces: nets}, Store: store}, nil
}
