package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ternvm/tern/vmm"
	"github.com/ternvm/tern/vmm/api"
	"github.com/urfave/cli/v2"
)

func apiSocketFlag() cli.Flag {
	return &cli.StringFlag{Name: "api-socket", Usage: "the running tern's API socket (tern run --api-socket)", Required: true}
}

func pauseCommand() *cli.Command {
	return vmStateCommand("pause", "pause a running tern's guest", "Paused")
}

func resumeCommand() *cli.Command {
	return vmStateCommand("resume", "resume a paused guest", "Resumed")
}

func vmStateCommand(name, usage, state string) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: " ", Flags: []cli.Flag{apiSocketFlag()},
		Action: func(c *cli.Context) error { return setVMState(c.String("api-socket"), state) },
	}
}

// setVMState asks a running tern to pause ("Paused") or resume ("Resumed").
func setVMState(sock, state string) error {
	_, err := apiCall(sock, http.MethodPatch, "/vm", fmt.Sprintf(`{"state": %q}`, state))
	return err
}

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save a running guest to a directory, restore one, or merge a diff snapshot",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "pause the guest of a running tern and write its snapshot (DIR/vmstate and DIR/memory)",
				ArgsUsage: " ",
				Flags: []cli.Flag{
					apiSocketFlag(),
					&cli.StringFlag{Name: "dir", Usage: "directory for the snapshot (created if missing)", Required: true},
					&cli.BoolFlag{Name: "diff", Usage: "write only the pages changed since the previous snapshot (tern run --track-dirty-pages)"},
					&cli.BoolFlag{Name: "resume", Usage: "resume the guest once the snapshot is written (default: leave it paused)"},
				},
				Action: snapshotCreate,
			},
			{
				Name:      "restore",
				Usage:     "rebuild a guest from a snapshot and run it until it stops (exit status as tern run)",
				ArgsUsage: " ",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "dir", Usage: "the snapshot's directory", Required: true},
					consoleFlag(), consoleRawFlag(),
					&cli.StringFlag{Name: "api-socket", Usage: "serve the restored VM's HTTP API on this Unix socket"},
					&cli.StringSliceFlag{Name: "disk", Usage: "the image for each disk the snapshot names: OLDPATH=NEWPATH, or OLDPATH=OLDPATH to confirm it (repeatable)"},
					&cli.StringSliceFlag{Name: "tap", Usage: "the TAP for each network: OLD=NEW, or OLD=OLD to confirm it (repeatable)"},
					&cli.StringSliceFlag{Name: "bridge", Usage: "the bridge each TAP joins: OLD=NEW, or OLD=OLD to confirm it (repeatable)"},
					&cli.StringFlag{Name: "vsock-socket", Usage: "the vsock device's socket path (the snapshot's own to confirm it)"},
					&cli.BoolFlag{Name: "trust-snapshot-paths", Usage: "use every disk, TAP, bridge and vsock socket the snapshot names that no flag above maps, as it names it"},
					&cli.BoolFlag{Name: "track-dirty-pages", Usage: "track dirty pages in the restored guest (diff snapshots relative to this one)"},
					&cli.StringFlag{Name: "kvm", Value: vmm.DefaultKVMPath, Usage: "KVM device"},
					cacheDirFlag(),
				}, seccompFlags()...),
				Action: snapshotRestore,
			},
			{
				Name:      "merge",
				Usage:     "apply a diff snapshot onto the full snapshot it follows (the base then holds the merged full snapshot)",
				ArgsUsage: " ",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "base", Usage: "the full snapshot's directory (rewritten)", Required: true},
					&cli.StringFlag{Name: "diff", Usage: "the diff snapshot's directory", Required: true},
				},
				Action: func(c *cli.Context) error {
					if err := vmm.MergeSnapshot(c.String("base"), c.String("diff")); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "merged %s onto %s\n", c.String("diff"), c.String("base"))
					return nil
				},
			},
		},
	}
}

func snapshotCreate(c *cli.Context) error {
	sock := c.String("api-socket")
	dir, err := filepath.Abs(c.String("dir"))
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	if err := setVMState(sock, "Paused"); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	kind := "Full"
	if c.Bool("diff") {
		kind = "Diff"
	}
	body, _ := json.Marshal(map[string]string{"dir": dir, "snapshot_type": kind})
	out, err := apiCall(sock, http.MethodPut, "/snapshot/create", string(body))
	if err != nil {
		return err
	}
	var s api.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return fmt.Errorf("API answered %q: %w", out, err)
	}
	fmt.Fprintf(c.App.Writer, "snapshot %s (%s): vmstate %d bytes, memory %d of %d bytes stored, took %.1f ms\n",
		s.Dir, strings.ToLower(s.Type), s.StateBytes, s.MemoryStoredBytes, s.MemoryBytes, float64(s.TookMicros)/1000)
	if c.Bool("resume") {
		if err := setVMState(sock, "Resumed"); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
	return nil
}

func snapshotRestore(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all options are flags; see tern snapshot restore --help)", c.Args().First())
	}
	opts := vmm.RestoreOptions{
		Dir: c.String("dir"), VsockSocket: c.String("vsock-socket"), TrackDirtyPages: c.Bool("track-dirty-pages"),
		TrustSnapshotPaths: c.Bool("trust-snapshot-paths"),
		KVMPath:            c.String("kvm"), HostCacheDir: c.String("cache-dir"), Logger: logger, Started: started,
	}
	var err error
	if opts.DiskPaths, opts.TAPs, opts.Bridges, err = parseHostOverrides(c); err != nil {
		return err
	}
	if opts.BeforeRun, err = seccompHook(c); err != nil {
		return err
	}
	var closeConsole func()
	if opts.Console, opts.ConsoleInput, closeConsole, err = openConsole(c.String("console"), c.Bool("console-raw")); err != nil {
		return err
	}
	defer closeConsole()
	apiSock, err := openAPI(c.String("api-socket"))
	if err != nil {
		return err
	}
	vm, err := vmm.Restore(opts)
	if err != nil {
		apiSock.close()
		return explainUnconfirmed(err, "--trust-snapshot-paths")
	}
	defer vm.Close()
	return runUntilStopped(vm, apiSock)
}

// parseHostOverrides reads --disk, --tap and --bridge.
func parseHostOverrides(c *cli.Context) (disks, taps, bridges map[string]string, err error) {
	if disks, err = parseOverrides("--disk", c.StringSlice("disk")); err != nil {
		return
	}
	if taps, err = parseOverrides("--tap", c.StringSlice("tap")); err != nil {
		return
	}
	bridges, err = parseOverrides("--bridge", c.StringSlice("bridge"))
	return
}

// explainUnconfirmed says, for an *vmm.UnconfirmedError, which flag
// confirms or replaces each resource; trustFlag is the command's flag that
// accepts them all. Other errors pass through.
func explainUnconfirmed(err error, trustFlag string) error {
	var ue *vmm.UnconfirmedError
	if !errors.As(err, &ue) {
		return err
	}
	var how []string
	for _, r := range ue.Resources {
		switch r.Kind {
		case vmm.ResourceDisk:
			how = append(how, fmt.Sprintf("%s: --disk %s=%s to use it, or --disk %s=NEWPATH", r, r.Name, r.Name, r.Name))
		case vmm.ResourceTAP:
			how = append(how, fmt.Sprintf("%s: --tap %s=%s, or --tap %s=NEW", r, r.Name, r.Name, r.Name))
		case vmm.ResourceBridge:
			how = append(how, fmt.Sprintf("%s: --bridge %s=%s, or --bridge %s=NEW", r, r.Name, r.Name, r.Name))
		case vmm.ResourceVsockSocket:
			how = append(how, fmt.Sprintf("%s: --vsock-socket %s, or another path", r, r.Name))
		default:
			how = append(how, r.String())
		}
	}
	return fmt.Errorf("%s names host resources no flag confirms (nothing was opened): %s; or %s to use each as it is named: %w",
		ue.From, strings.Join(how, "; "), trustFlag, vmm.ErrUnconfirmed)
}

// parseOverrides reads OLD=NEW pairs.
func parseOverrides(flag string, specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		old, repl, ok := strings.Cut(s, "=")
		if !ok || old == "" || repl == "" {
			return nil, fmt.Errorf("%s %q: want OLD=NEW", flag, s)
		}
		if _, dup := out[old]; dup {
			return nil, fmt.Errorf("%s: %s is given twice", flag, old)
		}
		out[old] = repl
	}
	return out, nil
}
