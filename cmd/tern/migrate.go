package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/transport"
	"github.com/ternvm/tern/vmm"
	"github.com/ternvm/tern/vmm/api"
	"github.com/urfave/cli/v2"
)

func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-cert", Usage: "this side's certificate (PEM) for mutual TLS"},
		&cli.StringFlag{Name: "tls-key", Usage: "this side's private key (PEM)"},
		&cli.StringFlag{Name: "tls-ca", Usage: "the CA (PEM) the peer's certificate must chain to"},
		&cli.BoolFlag{Name: "insecure", Usage: "plain TCP without TLS (both sides must say so)"},
	}
}

func transportOptions(c *cli.Context) transport.Options {
	return transport.Options{
		TLS:      transport.TLSFiles{CertFile: c.String("tls-cert"), KeyFile: c.String("tls-key"), CAFile: c.String("tls-ca")},
		Insecure: c.Bool("insecure"),
	}
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "move a running guest to another tern (live migration)",
		Subcommands: []*cli.Command{
			{
				Name:      "receive",
				Usage:     "wait for one incoming guest, then run it until it stops (exit status as tern run)",
				ArgsUsage: " ",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "listen", Usage: "where to wait: tcp:HOST:PORT or unix:PATH", Required: true},
					&cli.StringSliceFlag{Name: "disk", Usage: "the image for each disk the source names: OLDPATH=NEWPATH, or OLDPATH=OLDPATH to confirm it (repeatable); a source sending --with-disks needs a NEWPATH for every disk, a local file it creates (0600) or overwrites"},
					&cli.StringSliceFlag{Name: "tap", Usage: "the TAP for each network: OLD=NEW, or OLD=OLD to confirm it (repeatable)"},
					&cli.StringSliceFlag{Name: "bridge", Usage: "the bridge each TAP joins: OLD=NEW, or OLD=OLD to confirm it (repeatable)"},
					&cli.StringFlag{Name: "vsock-socket", Usage: "the vsock device's socket path (the source's own to confirm it)"},
					&cli.BoolFlag{Name: "trust-source-paths", Usage: "use every disk, TAP, bridge and vsock socket the source names that no flag above maps, as it names it"},
					&cli.StringFlag{Name: "api-socket", Usage: "serve the received VM's HTTP API on this Unix socket"},
					&cli.BoolFlag{Name: "track-dirty-pages", Usage: "track dirty pages in the received guest"},
					&cli.StringFlag{Name: "kvm", Value: vmm.DefaultKVMPath, Usage: "KVM device"},
					cacheDirFlag(),
					consoleFlag(),
					consoleRawFlag(),
				}, append(tlsFlags(), seccompFlags()...)...),
				Action: migrateReceive,
			},
			{
				Name:      "send",
				Usage:     "migrate a running tern's guest to a tern waiting in migrate receive; exit 0 once the destination runs it",
				ArgsUsage: " ",
				Flags: append([]cli.Flag{
					apiSocketFlag(),
					&cli.StringFlag{Name: "to", Usage: "the destination: tcp:HOST:PORT or unix:PATH", Required: true},
					&cli.DurationFlag{Name: "downtime", Value: migrate.DefaultDowntime, Usage: "the longest pause stop-and-copy may cause at the measured bandwidth"},
					&cli.DurationFlag{Name: "timeout", Usage: "bound on the whole migration (default: none)"},
					&cli.StringFlag{Name: "on-timeout", Value: "cancel", Usage: "when --timeout passes: cancel (the guest runs on here) or force (stop-and-copy at once)"},
					&cli.StringFlag{Name: "bandwidth", Usage: "cap in bytes per second, like 100M (default: none)"},
					&cli.BoolFlag{Name: "with-disks", Usage: "stream the disks' contents too (no shared storage)"},
					&cli.StringFlag{Name: "output", Value: "text", Usage: "text, or json: the last line is the final status object"},
				}, tlsFlags()...),
				Action: migrateSend,
			},
			{
				Name: "status", Usage: "print the migration's status (JSON)", ArgsUsage: " ", Flags: []cli.Flag{apiSocketFlag()},
				Action: func(c *cli.Context) error {
					out, err := apiCall(c.String("api-socket"), http.MethodGet, "/migration", "")
					fmt.Fprint(c.App.Writer, out)
					return err
				},
			},
			{
				Name: "cancel", Usage: "cancel the migration under way; the guest runs on here", ArgsUsage: " ", Flags: []cli.Flag{apiSocketFlag()},
				Action: func(c *cli.Context) error {
					_, err := apiCall(c.String("api-socket"), http.MethodPut, "/migration/cancel", "")
					return err
				},
			},
		},
	}
}

func migrateReceive(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all options are flags; see tern migrate receive --help)", c.Args().First())
	}
	addr, err := transport.ParseAddr(c.String("listen"))
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	topts := transportOptions(c)
	if err := topts.Validate(addr); err != nil {
		return err
	}
	opts := vmm.ReceiveOptions{
		VsockSocket: c.String("vsock-socket"), TrackDirtyPages: c.Bool("track-dirty-pages"),
		TrustSourcePaths: c.Bool("trust-source-paths"),
		KVMPath:          c.String("kvm"), HostCacheDir: c.String("cache-dir"), Logger: logger, Started: started,
	}
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

	// The API socket is made now: the guest runs, and tern is
	// confined, before Receive returns.
	apiSock, err := openAPI(c.String("api-socket"))
	if err != nil {
		return err
	}
	ln, err := transport.Listen(addr, topts)
	if err != nil {
		apiSock.close()
		return fmt.Errorf("--listen: %w", err)
	}
	// A signal while waiting, or while the guest comes in, ends it all:
	// nothing runs here yet.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	logger.WithField("listen", addr.String()).Info("waiting for an incoming migration")
	conn, err := acceptMigration(ln)
	ln.Close()
	if err != nil {
		apiSock.close()
		if ctx.Err() != nil {
			return &exitError{code: 1, err: errors.New("migrate receive: stopped by a signal before any guest arrived")}
		}
		return fmt.Errorf("migrate receive: %w", err)
	}
	defer conn.Close()
	logger.WithField("peer", conn.RemoteAddr().String()).Info("incoming migration")
	vm, err := vmm.Receive(ctx, conn, opts)
	if err != nil {
		apiSock.close()
		return fmt.Errorf("incoming migration failed, nothing runs here: %w", explainUnconfirmed(err, "--trust-source-paths"))
	}
	stop()
	defer vm.Close()
	return runUntilStopped(vm, apiSock)
}

// acceptMigration waits for the first peer that passes the transport's
// handshake: one whose certificate does not verify is refused and logged,
// and the wait goes on, so that a stranger cannot end it.
func acceptMigration(ln net.Listener) (net.Conn, error) {
	for {
		conn, err := ln.Accept()
		var he *transport.HandshakeError
		if errors.As(err, &he) {
			logger.WithError(err).Warn("refused a migration peer; still waiting")
			continue
		}
		return conn, err
	}
}

func migrateSend(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all options are flags; see tern migrate send --help)", c.Args().First())
	}
	req := api.MigrationRequest{
		To:         c.String("to"),
		DowntimeMS: float64(c.Duration("downtime")) / float64(time.Millisecond),
		TimeoutMS:  c.Duration("timeout").Milliseconds(),
		OnTimeout:  c.String("on-timeout"),
		WithDisks:  c.Bool("with-disks"),
		TLSCert:    c.String("tls-cert"), TLSKey: c.String("tls-key"), TLSCA: c.String("tls-ca"),
		Insecure: c.Bool("insecure"),
	}
	if req.OnTimeout != "cancel" && req.OnTimeout != "force" {
		return fmt.Errorf("--on-timeout: %q is not cancel or force", req.OnTimeout)
	}
	if c.Duration("downtime") <= 0 {
		return fmt.Errorf("--downtime: %v is not a positive duration", c.Duration("downtime"))
	}
	if s := c.String("bandwidth"); s != "" {
		bw, err := parseSize(s)
		if err != nil {
			return fmt.Errorf("--bandwidth: %w", err)
		}
		req.Bandwidth = bw
	}
	output := c.String("output")
	if output != "text" && output != "json" {
		return fmt.Errorf("--output: %q is not text or json", output)
	}
	addr, err := transport.ParseAddr(req.To)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if err := transportOptions(c).Validate(addr); err != nil {
		return err
	}
	sock := c.String("api-socket")
	body, _ := json.Marshal(req)
	if _, err := apiCall(sock, http.MethodPut, "/migration/send", string(body)); err != nil {
		return err
	}
	var show statusUpdater = newMigrateProgress(c.App.Writer)
	if output == "json" {
		show = quietProgress{}
	}
	final, err := watchMigration(sock, show)
	if output == "json" {
		line, _ := json.Marshal(final)
		fmt.Fprintln(c.App.Writer, string(line))
	}
	if err != nil {
		return err
	}
	if final.Phase != migrate.PhaseCompleted {
		msg := final.Error
		if msg == "" {
			msg = "it ended " + string(final.Phase)
		}
		return fmt.Errorf("migration %s: %s", final.Phase, msg)
	}
	return nil
}

// statusUpdater is what watchMigration reports each status to.
type statusUpdater interface {
	Update(migrate.Status)
	Finish(migrate.Status, error)
}

// watchMigration follows GET /migration?watch=1 to the final status.
func watchMigration(sock string, p statusUpdater) (migrate.Status, error) {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	var last migrate.Status
	resp, err := hc.Get("http://tern/migration?watch=1")
	if err != nil {
		err = fmt.Errorf("API at %s: %w", sock, err)
		p.Finish(last, err)
		return last, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("API: GET /migration: %s", resp.Status)
		p.Finish(last, err)
		return last, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seen := false
	for sc.Scan() {
		var st migrate.Status
		if err := json.Unmarshal(sc.Bytes(), &st); err != nil {
			err = fmt.Errorf("API: status line %q: %w", strings.TrimSpace(sc.Text()), err)
			p.Finish(last, err)
			return last, err
		}
		last, seen = st, true
		p.Update(st)
	}
	switch last.Phase {
	case migrate.PhaseCompleted, migrate.PhaseFailed, migrate.PhaseCancelled:
		p.Finish(last, nil)
		return last, nil
	}
	err = errors.New("the source's API closed before the migration ended")
	if !seen {
		err = errors.New("the source's API sent no migration status")
	}
	if sc.Err() != nil {
		err = fmt.Errorf("%w: %w", err, sc.Err())
	}
	p.Finish(last, err)
	return last, err
}

// quietProgress shows nothing: with --output json the caller prints the
// final status as the last line.
type quietProgress struct{}

func (quietProgress) Update(migrate.Status)        {}
func (quietProgress) Finish(migrate.Status, error) {}
