package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/internal/seccomp"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/vmm"
	"github.com/ternvm/tern/vmm/api"
	"github.com/ternvm/tern/vmm/fcapi"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// Firecracker's exit codes (its FcExitCode), which its clients read.
const (
	fcExitOK               = 0
	fcExitGeneric          = 1
	fcExitBadConfiguration = 152
	fcExitArgParsing       = 153
	fcExitSIGHUP           = 156
)

// firecrackerArgs turns the command line of tern started under the name
// firecracker (a link, so that clients that look for firecracker on PATH
// find tern) into that of tern firecracker.
func firecrackerArgs(args []string) []string {
	if len(args) > 0 && filepath.Base(args[0]) == "firecracker" {
		return append([]string{args[0], "firecracker"}, args[1:]...)
	}
	return args
}

func firecrackerCommand() *cli.Command {
	return &cli.Command{
		Name:      "firecracker",
		Usage:     "run one microVM driven by Firecracker's command line and API (also: tern started as firecracker)",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "api-sock", Value: "/run/firecracker.socket", Usage: "path of the API's Unix socket (must not exist)"},
			&cli.StringFlag{Name: "id", Value: "anonymous-instance", Usage: "the microVM's id"},
			&cli.StringFlag{Name: "config-file", Usage: "Firecracker's JSON configuration; the microVM boots at once"},
			&cli.BoolFlag{Name: "no-api", Usage: "serve no API (needs --config-file)"},
			&cli.StringFlag{Name: "level", Usage: "log level: Error, Warning, Info, Debug, Trace or Off"},
			&cli.StringFlag{Name: "log-path", Usage: "file or FIFO for the log"},
			&cli.BoolFlag{Name: "show-level", Usage: "show the level in log lines"},
			&cli.BoolFlag{Name: "show-log-origin", Usage: "show the file and line in log lines"},
			&cli.StringFlag{Name: "module", Usage: "log only this module (not implemented by tern)"},
			&cli.StringFlag{Name: "metrics-path", Usage: "file or FIFO for the metrics (one JSON line per flush)"},
			&cli.BoolFlag{Name: "boot-timer", Usage: "accepted: tern always has the boot timer device (port 0x440) and logs the guest's boot time"},
			&cli.StringFlag{Name: "metadata", Usage: "file of JSON to put in MMDS"},
			&cli.StringFlag{Name: "seccomp-filter", Usage: "Firecracker's compiled seccomp filter: refused, tern installs its own allow-list"},
			&cli.BoolFlag{Name: "no-seccomp", Usage: "install no seccomp filter (by default tern's own allow-list is installed before the guest runs)"},
			&cli.Uint64Flag{Name: "start-time-us", Usage: "the process's start, CLOCK_MONOTONIC microseconds (as the jailer passes it)"},
			&cli.Uint64Flag{Name: "start-time-cpu-us", Usage: "accepted (the jailer's CPU time at start)"},
			&cli.Uint64Flag{Name: "parent-cpu-time-us", Usage: "accepted (the jailer's CPU time)"},
			&cli.Uint64Flag{Name: "http-api-max-payload-size", Value: fcapi.MaxBodyBytes, Usage: "largest API request body; tern supports only the default"},
			&cli.BoolFlag{Name: "version", Usage: "print the version of Firecracker's API tern implements"},
			cacheDirFlag(),
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return &exitError{code: fcExitArgParsing, err: fmt.Errorf("%w (see tern firecracker --help)", err)}
		},
		Action: firecrackerAction,
	}
}

// firecrackerVersion is --version's output: Firecracker's first line
// ("Firecracker vX.Y.Z", whose second field clients such as Kata parse as
// a semantic version), naming the API version implemented.
func firecrackerVersion() string {
	return fmt.Sprintf("Firecracker v%s\n\ntern %s, implementing Firecracker's API %s\n", fcapi.APIVersion, version, fcapi.APIVersion)
}

func firecrackerAction(c *cli.Context) error {
	if c.Bool("version") {
		fmt.Fprint(c.App.Writer, firecrackerVersion())
		return nil
	}
	argErr := func(format string, a ...any) error {
		return &exitError{code: fcExitArgParsing, err: fmt.Errorf(format, a...)}
	}
	if c.NArg() > 0 {
		return argErr("unexpected argument %q (all options are flags)", c.Args().First())
	}
	if c.Bool("no-api") && c.String("config-file") == "" {
		return argErr("--no-api needs --config-file")
	}
	if c.Uint64("http-api-max-payload-size") != fcapi.MaxBodyBytes {
		return argErr("--http-api-max-payload-size: tern supports only %d", fcapi.MaxBodyBytes)
	}
	if c.String("module") != "" {
		return argErr("--module: tern does not filter its log by module")
	}
	if c.Bool("no-seccomp") && c.String("seccomp-filter") != "" {
		return argErr("--no-seccomp and --seccomp-filter exclude each other")
	}
	if p := c.String("seccomp-filter"); p != "" {
		// Firecracker's file is BPF compiled for Firecracker's threads
		// and calls; tern's own allow-list fits tern.
		return argErr("--seccomp-filter %s: tern does not load Firecracker's compiled filters; it installs its own allow-list by default (or none with --no-seccomp)", p)
	}
	var beforeRun func() error
	if c.Bool("no-seccomp") {
		logger.Warn("seccomp filter off (--no-seccomp): tern may make any system call")
	} else {
		beforeRun = installSeccomp(seccomp.Enforce)
	}

	start := started
	if us := c.Uint64("start-time-us"); us != 0 {
		var now unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err == nil {
			start = time.Now().Add(-time.Duration(now.Nano()/1000-int64(us)) * time.Microsecond)
		}
	}
	log := logrus.New()
	log.SetOutput(os.Stderr)
	vms := make(chan *vmm.VM, 1)
	opts := fcapi.Options{
		ID: c.String("id"), Console: os.Stdout, ConsoleInput: os.Stdin,
		Logger: log, Started: start, HostCacheDir: c.String("cache-dir"),
		OnStart: func(vm *vmm.VM) { vms <- vm }, BeforeRun: beforeRun,
		// As Firecracker, the metadata store exists from the start: PUT
		// /mmds may fill it before /mmds/config says who reaches it.
		MMDS: mmds.NewStore(0),
	}
	srv := fcapi.New(opts)
	defer srv.Close()

	lc := fcapi.Logger{}
	if v := c.String("level"); v != "" {
		lc.Level = &v
	}
	if v := c.String("log-path"); v != "" {
		lc.LogPath = &v
	}
	sl, so := c.Bool("show-level"), c.Bool("show-log-origin")
	lc.ShowLevel, lc.ShowLogOrigin = &sl, &so
	if err := srv.ConfigureLogger(lc); err != nil {
		return argErr("%v", err)
	}
	if p := c.String("metrics-path"); p != "" {
		if err := srv.ConfigureMetrics(fcapi.Metrics{MetricsPath: p}); err != nil {
			return &exitError{code: fcExitGeneric, err: err}
		}
	}
	if p := c.String("metadata"); p != "" {
		if err := loadMetadata(opts.MMDS, p); err != nil {
			return &exitError{code: fcExitGeneric, err: fmt.Errorf("--metadata: %w", err)}
		}
	}

	if !c.Bool("no-api") {
		sock := c.String("api-sock")
		if _, err := os.Lstat(sock); err == nil {
			return &exitError{code: fcExitGeneric, err: fmt.Errorf("--api-sock: %s already exists", sock)}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return &exitError{code: fcExitGeneric, err: fmt.Errorf("--api-sock: %w", err)}
		}
		ln, remove, err := listenAPI(sock)
		if err != nil {
			return &exitError{code: fcExitGeneric, err: fmt.Errorf("--api-sock: %w", err)}
		}
		hs := &http.Server{
			Handler:           srv,
			ReadHeaderTimeout: api.ReadHeaderTimeout, ReadTimeout: api.ReadTimeout,
			WriteTimeout: api.WriteTimeout, IdleTimeout: api.IdleTimeout, MaxHeaderBytes: 16 << 10,
		}
		go hs.Serve(api.LimitListener(ln, api.MaxConns))
		defer func() {
			// As tern run's API: removed while still listening, then
			// requests under way finish.
			remove()
			ctx, cancel := context.WithTimeout(context.Background(), apiDrainTimeout)
			defer cancel()
			if hs.Shutdown(ctx) != nil {
				hs.Close()
			}
		}()
	}
	if p := c.String("config-file"); p != "" {
		data, err := os.ReadFile(p)
		if err == nil {
			err = srv.ApplyConfig(data)
		}
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			return &exitError{code: fcExitBadConfiguration, err: fmt.Errorf("--config-file: %w", err)}
		}
	}
	return waitFirecracker(srv, vms, log)
}

// loadMetadata puts the JSON of file into MMDS.
func loadMetadata(store *mmds.Store, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil || v == nil {
		return fmt.Errorf("%s does not hold a JSON object", file)
	}
	return store.Put(data)
}

// waitFirecracker serves until the guest ends or a signal arrives:
// SIGINT and SIGTERM stop the VM and exit 128+N; SIGHUP stops it and
// exits 156, Firecracker's status for it. A guest's own poweroff or
// reset exits 0.
func waitFirecracker(srv *fcapi.Server, vms <-chan *vmm.VM, log logrus.FieldLogger) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals()...)
	defer signal.Stop(sigs)
	exitFor := func(s os.Signal) error {
		if s == syscall.SIGHUP {
			return &exitError{code: fcExitSIGHUP, err: errors.New("received SIGHUP")}
		}
		n, _ := s.(syscall.Signal)
		return &exitError{code: 128 + int(n)}
	}
	var vm *vmm.VM
	for vm == nil {
		select {
		case vm = <-vms:
		case s := <-sigs:
			return exitFor(s)
		}
	}
	defer vm.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Value // the os.Signal that stopped the VM
	go func() {
		for {
			select {
			case s := <-sigs:
				got.Store(s)
				log.WithField("signal", s.String()).Info("stopping the VM")
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	// A snapshot loaded without resume_vm is not started yet; Wait
	// returns only once it ran and stopped, or on a signal.
	reason, err := vm.Wait(ctx)
	cancel()
	// The last line, as Firecracker writes one at exit (the server
	// writes the others every minute).
	srv.FlushMetrics()
	if err != nil {
		return &exitError{code: fcExitGeneric, err: fmt.Errorf("VM failed: %w", err)}
	}
	log.WithField("reason", reason.String()).Info("VM stopped")
	if s, ok := got.Load().(os.Signal); ok && reason == vmm.StopRequested {
		return exitFor(s)
	}
	return nil
}
