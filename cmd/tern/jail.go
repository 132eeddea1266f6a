package main

import (
	"fmt"
	"os"
	"os/signal"

	"github.com/urfave/cli/v2"

	"github.com/ternvm/tern/internal/jail"
)

// maybeJailStage2 turns this process into a jail's second stage when tern
// jail re-executed it for that (see package jail); it then never returns.
// main calls it before anything else, since the second stage must own the
// process from its first instruction to the exec.
func maybeJailStage2() {
	if jail.IsStage2() {
		jail.RunStage2()
	}
}

func jailCommand() *cli.Command {
	return &cli.Command{
		Name:      "jail",
		Usage:     "run tern (or --exec-file) confined, the way Firecracker's jailer runs Firecracker",
		ArgsUsage: "-- TERN-ARGS...",
		Description: "Builds CHROOT_BASE/<exec-file name>/<id>/root, pivots into it in a new mount namespace (and a new\n" +
			"network namespace unless --netns names one; a new PID namespace with --new-pid-ns), makes /dev/kvm and\n" +
			"/dev/net/tun there owned by --uid/--gid, copies the exec file in, mounts the --bind-ro/--bind-rw files,\n" +
			"puts the process in a cgroup v2 with the --cgroup settings, sets the resource limits, drops to\n" +
			"--uid/--gid with no groups, no capabilities and no_new_privs, and execs the exec file with the\n" +
			"arguments after --. Paths in those arguments are paths inside the jail.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "id", Required: true, Usage: "the jail's unique id: letters, digits and '-', at most 64"},
			&cli.StringFlag{Name: "exec-file", Required: true, Usage: "the program to jail (normally this tern binary)"},
			&cli.StringFlag{Name: "uid", Required: true, Usage: "numeric uid the program runs as"},
			&cli.StringFlag{Name: "gid", Required: true, Usage: "numeric gid the program runs as"},
			&cli.StringFlag{Name: "chroot-base-dir", Value: jail.DefaultChrootBase, Usage: "where jails are built"},
			&cli.StringFlag{Name: "netns", Usage: "path of a network namespace to join (default: a new, empty one)"},
			&cli.StringSliceFlag{Name: "cgroup", Usage: "cgroup v2 FILE=VALUE to set, e.g. memory.max=512M or cpu.max=\"50000 100000\" (repeatable)"},
			&cli.StringFlag{Name: "cgroup-version", Value: "2", Usage: "cgroup version; only 2 is supported"},
			&cli.StringFlag{Name: "parent-cgroup", Usage: "cgroup (relative to the cgroup v2 root) the jail's cgroup <id> is made in (default: the exec file's name)"},
			&cli.StringSliceFlag{Name: "resource-limit", Usage: "fsize=BYTES or no-file=N (repeatable; no-file defaults to 2048)"},
			&cli.BoolFlag{Name: "daemonize", Usage: "detach: new session, stdio on /dev/null, return once the program runs"},
			&cli.BoolFlag{Name: "new-pid-ns", Usage: "run the program as PID 1 of a new PID namespace"},
			&cli.StringSliceFlag{Name: "bind-ro", Usage: "SRC[:DEST] host file or directory mounted read-only in the jail at DEST (default /<name>) (repeatable)"},
			&cli.StringSliceFlag{Name: "bind-rw", Usage: "SRC[:DEST] like --bind-ro, read-write (the file must be writable by --uid) (repeatable)"},
		},
		Action: runJail,
	}
}

// jailConfig turns the flags into a jail.Config, checking each.
func jailConfig(c *cli.Context) (jail.Config, error) {
	cfg := jail.Config{
		ID: c.String("id"), ExecFile: c.String("exec-file"), ChrootBase: c.String("chroot-base-dir"),
		NetNS: c.String("netns"), ParentCgroup: c.String("parent-cgroup"),
		Daemonize: c.Bool("daemonize"), NewPIDNS: c.Bool("new-pid-ns"), Args: c.Args().Slice(),
	}
	if err := jail.CheckID(cfg.ID); err != nil {
		return cfg, err
	}
	var err error
	if cfg.UID, err = jail.ParseID("uid", c.String("uid")); err != nil {
		return cfg, err
	}
	if cfg.GID, err = jail.ParseID("gid", c.String("gid")); err != nil {
		return cfg, err
	}
	switch v := c.String("cgroup-version"); v {
	case "2":
	case "1":
		return cfg, fmt.Errorf("--cgroup-version 1: tern jail supports cgroup v2 only (--cgroup-version 2)")
	default:
		return cfg, fmt.Errorf("--cgroup-version %q: only 2 is supported", v)
	}
	for _, s := range c.StringSlice("cgroup") {
		cs, err := jail.ParseCgroup(s)
		if err != nil {
			return cfg, err
		}
		cfg.Cgroup = append(cfg.Cgroup, cs)
	}
	for _, s := range c.StringSlice("resource-limit") {
		if err := jail.ParseLimit(&cfg.Limits, s); err != nil {
			return cfg, err
		}
	}
	for _, ro := range []bool{true, false} {
		name := map[bool]string{true: "bind-ro", false: "bind-rw"}[ro]
		for _, s := range c.StringSlice(name) {
			b, err := jail.ParseBind(s, ro)
			if err != nil {
				return cfg, fmt.Errorf("--%s: %w", name, err)
			}
			cfg.Binds = append(cfg.Binds, b)
		}
	}
	return cfg, cfg.Check()
}

func runJail(c *cli.Context) error {
	if err := jail.RequireRoot(); err != nil {
		return err
	}
	cfg, err := jailConfig(c)
	if err != nil {
		return err
	}
	// The signals that stop tern reach the jailed tern through us; catch
	// them before it starts so none is lost in between.
	sigs := make(chan os.Signal, 4)
	if !cfg.Daemonize {
		signal.Notify(sigs, stopSignals()...)
		defer signal.Stop(sigs)
	}
	p, err := jail.Start(cfg, os.Stdin, c.App.Writer, c.App.ErrWriter)
	if err != nil {
		return err
	}
	if cfg.Daemonize {
		return p.Release()
	}
	go func() {
		for s := range sigs {
			p.Signal(s)
		}
	}()
	ws, err := p.Wait()
	if err != nil {
		return err
	}
	switch {
	case ws.Signaled():
		return &exitError{code: 128 + int(ws.Signal())}
	case ws.ExitStatus() != 0:
		return &exitError{code: ws.ExitStatus()}
	}
	return nil
}
