// Command tern boots and runs microVMs on KVM.
//
// Exit status: 0 when the guest powers off or resets itself; 1 for a usage
// or host error (named on one line on stderr); 2 when the guest crashed the
// VM (a KVM internal error or failed entry); 128+N when stopped by signal N
// after a clean teardown.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
)

// started is taken as early as a Go program can, so that start-up figures
// include flag parsing, KVM set-up and guest loading.
var started = time.Now()

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// exitError carries an exit status chosen by a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	maybeJailStage2()
	ignoreSIGPIPE()
	os.Exit(runMain(os.Args, os.Stdout, os.Stderr))
}

// runMain runs the CLI and turns its outcome into an exit status, printing
// any error as one line on stderr.
func runMain(args []string, stdout, stderr io.Writer) int {
	args = firecrackerArgs(args)
	prepareHost(args)
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	err := app.Run(args)
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "tern: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	return code
}

func newApp() *cli.App {
	app := &cli.App{
		Name:            "tern",
		Usage:           "boot and run Linux microVMs on KVM",
		Version:         version,
		HideHelpCommand: true,
		// --disk and --net values are comma-separated key=value lists.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "monitor log level: debug, info, warn or error"},
		},
		Before: func(c *cli.Context) error {
			lvl, err := logrus.ParseLevel(c.String("log-level"))
			if err != nil {
				return fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", c.String("log-level"))
			}
			logger.SetLevel(lvl)
			return nil
		},
		Commands: []*cli.Command{runCommand(), snapshotCommand(), migrateCommand(), pauseCommand(), resumeCommand(), ctrlAltDelCommand(), balloonCommand(), checkCommand(), jailCommand(), firecrackerCommand(), versionCommand()},
		// A usage error is one line, like every other error.
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return fmt.Errorf("%w (see tern %s --help)", err, c.Command.Name)
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	cacheFlagNames(app)
	return app
}

var logger = func() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000000"})
	return l
}()
