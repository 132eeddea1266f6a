package main

import "github.com/urfave/cli/v2"

// urfave/cli looks a flag up by calling Names() on every flag of the
// command, and each call runs a regular expression over each name (to
// strip urfave/cli v1's "name, alias" form). Before an action runs it asks
// IsSet of every flag, so `tern run`, with about 30 flags, ran about 900 of
// them: 0.2 ms of a 4 ms start. The wrappers below answer Names() from a
// list made once; every other method is the wrapped flag's.

type boolFlag struct {
	*cli.BoolFlag
	names []string
}

func (f boolFlag) Names() []string { return f.names }

type stringFlag struct {
	*cli.StringFlag
	names []string
}

func (f stringFlag) Names() []string { return f.names }

type stringSliceFlag struct {
	*cli.StringSliceFlag
	names []string
}

func (f stringSliceFlag) Names() []string { return f.names }

type intFlag struct {
	*cli.IntFlag
	names []string
}

func (f intFlag) Names() []string { return f.names }

type durationFlag struct {
	*cli.DurationFlag
	names []string
}

func (f durationFlag) Names() []string { return f.names }

type uint64Flag struct {
	*cli.Uint64Flag
	names []string
}

func (f uint64Flag) Names() []string { return f.names }

// cacheFlagNames wraps the flags of app and of every command under it, so
// their names are worked out once.
func cacheFlagNames(app *cli.App) {
	wrapFlags(app.Flags)
	var walk func([]*cli.Command)
	walk = func(cs []*cli.Command) {
		for _, c := range cs {
			wrapFlags(c.Flags)
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
}

// wrapFlags wraps each flag of a type it knows. tern's flag names hold no
// comma or space, so a flag's names are its name and aliases as written
// (TestCachedFlagNamesAreCLIs checks that against cli.FlagNames).
func wrapFlags(fs []cli.Flag) {
	names := func(name string, aliases []string) []string {
		return append([]string{name}, aliases...)
	}
	for i, f := range fs {
		switch t := f.(type) {
		case *cli.BoolFlag:
			fs[i] = boolFlag{t, names(t.Name, t.Aliases)}
		case *cli.StringFlag:
			fs[i] = stringFlag{t, names(t.Name, t.Aliases)}
		case *cli.StringSliceFlag:
			fs[i] = stringSliceFlag{t, names(t.Name, t.Aliases)}
		case *cli.IntFlag:
			fs[i] = intFlag{t, names(t.Name, t.Aliases)}
		case *cli.DurationFlag:
			fs[i] = durationFlag{t, names(t.Name, t.Aliases)}
		case *cli.Uint64Flag:
			fs[i] = uint64Flag{t, names(t.Name, t.Aliases)}
		}
	}
}
