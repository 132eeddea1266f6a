package main

import (
	"encoding/json"
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
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Usage: "the snapshot's directory", Required: true},
					consoleFlag(), consoleRawFlag(),
					&cli.StringFlag{Name: "api-socket", Usage: "serve the restored VM's HTTP API on this Unix socket"},
					&cli.StringSliceFlag{Name: "disk", Usage: "use another image for a disk: OLDPATH=NEWPATH (repeatable)"},
					&cli.StringSliceFlag{Name: "tap", Usage: "use another TAP for a network: OLD=NEW (repeatable)"},
					&cli.StringFlag{Name: "vsock-socket", Usage: "listen for vsock connections on this path instead of the snapshot's"},
					&cli.BoolFlag{Name: "track-dirty-pages", Usage: "track dirty pages in the restored guest (diff snapshots relative to this one)"},
					&cli.StringFlag{Name: "kvm", Value: vmm.DefaultKVMPath, Usage: "KVM device"},
				},
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
		KVMPath: c.String("kvm"), Logger: logger, Started: started,
	}
	var err error
	if opts.DiskPaths, err = parseOverrides("--disk", c.StringSlice("disk")); err != nil {
		return err
	}
	if opts.TAPs, err = parseOverrides("--tap", c.StringSlice("tap")); err != nil {
		return err
	}
	var closeConsole func()
	if opts.Console, opts.ConsoleInput, closeConsole, err = openConsole(c.String("console"), c.Bool("console-raw")); err != nil {
		return err
	}
	defer closeConsole()
	vm, err := vmm.Restore(opts)
	if err != nil {
		return err
	}
	defer vm.Close()
	return runUntilStopped(vm, c.String("api-socket"))
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
