package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// Every flag of every command answers Names() from its cache, and that
// answer is what urfave/cli would have worked out itself.
func TestCachedFlagNamesAreCLIs(t *testing.T) {
	app := newApp()
	check := func(where string, fs []cli.Flag) {
		for _, f := range fs {
			var want []string
			switch w := f.(type) {
			case boolFlag:
				want = cli.FlagNames(w.Name, w.Aliases)
			case stringFlag:
				want = cli.FlagNames(w.Name, w.Aliases)
			case stringSliceFlag:
				want = cli.FlagNames(w.Name, w.Aliases)
			case intFlag:
				want = cli.FlagNames(w.Name, w.Aliases)
			case durationFlag:
				want = cli.FlagNames(w.Name, w.Aliases)
			case uint64Flag:
				want = cli.FlagNames(w.Name, w.Aliases)
			default:
				t.Errorf("%s: flag %v (%T) is not wrapped: its names are worked out at every lookup", where, f.Names(), f)
				continue
			}
			if got := f.Names(); !slices.Equal(got, want) {
				t.Errorf("%s: flag names %q, urfave/cli would say %q", where, got, want)
			}
		}
	}
	check("tern", app.Flags)
	var walk func(string, []*cli.Command)
	walk = func(path string, cs []*cli.Command) {
		for _, c := range cs {
			check(path+" "+c.Name, c.Flags)
			walk(path+" "+c.Name, c.Subcommands)
		}
	}
	walk("tern", app.Commands)
}

// A wrapped flag still parses, reports IsSet and shows in help as before.
func TestWrappedFlagsStillParse(t *testing.T) {
	var got struct {
		mem, disk0 string
		set, unset bool
		cpus       int
	}
	app := newApp()
	app.Commands = []*cli.Command{{
		Name: "x",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "memory", Value: "256M"},
			&cli.StringSliceFlag{Name: "disk"},
			&cli.IntFlag{Name: "cpus", Value: 1},
			&cli.BoolFlag{Name: "pvh"},
		},
		Action: func(c *cli.Context) error {
			got.mem, got.cpus = c.String("memory"), c.Int("cpus")
			got.disk0 = c.StringSlice("disk")[0]
			got.set, got.unset = c.IsSet("memory"), c.IsSet("pvh")
			return nil
		},
	}}
	cacheFlagNames(app)
	if err := app.Run([]string{"tern", "x", "--memory", "1G", "--disk", "path=a,ro=on", "--cpus", "3"}); err != nil {
		t.Fatal(err)
	}
	if got.mem != "1G" || got.cpus != 3 || got.disk0 != "path=a,ro=on" || !got.set || got.unset {
		t.Errorf("parsed %+v", got)
	}
}
