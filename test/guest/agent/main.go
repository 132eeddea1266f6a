// Command agent is the guest side of tern's end-to-end tests: a static
// binary in the test guest's initramfs that does what busybox cannot, one
// subcommand per job. Add a subcommand by adding it to the commands table.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one subcommand: its one-line help and what it does with the
// arguments after its name.
type command struct {
	help string
	run  func(args []string) error
}

var commands = map[string]command{
	"boot-done":  {help: "tell the monitor's boot timer that userspace is up", run: bootDone},
	"serve":      {help: "serve tcp|unix|vsock ADDRESS: accept one stream, echo it, print its size and sha256", run: serveCmd},
	"mktap":      {help: "mktap NAME: create a persistent TAP interface (as ip tuntap add does)", run: mkTAP},
	"send":       {help: "send tcp|unix|vsock|tern-vsock ADDRESS BYTES: send data, half-close, print sha256 of sent and echoed", run: sendCmd},
	"hold-dial":  {help: "hold-dial tcp|unix|vsock ADDRESS: keep one connection, a numbered line a second, re-dial when it breaks, end on a stop line", run: holdDialCmd},
	"dirty":      {help: "dirty MIB MIB_PER_S: rewrite a byte of every page of a MIB MiB buffer, pass after pass, at MIB_PER_S of the time it runs, busy throughout, until killed", run: dirtyCmd},
	"relay":      {help: "relay LISTEN TARGET [--cut-after BYTES | --flip-after BYTES]: forward one TCP connection both ways, cutting both ends after BYTES from the accepted side, or inverting its byte at offset BYTES", run: relayCmd},
	"probe":      {help: "probe tcp|unix|vsock ADDRESS: connect once and close; exit 0 when something listens there", run: probeCmd},
	"hostile":    {help: "hostile SECONDS: for SECONDS, sweep the I/O ports, touch every page of the MMIO hole, flood the console with escape sequences and spam the boot timer", run: hostileCmd},
	"hold-serve": {help: "hold-serve tcp|unix|vsock ADDRESS [COMMANDS]: record numbered lines per connection, send COMMANDS' lines; summary on SIGTERM or once COMMANDS and the connections ended", run: holdServeCmd},
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "agent: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := cmd.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "agent %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: agent COMMAND [ARGS]")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, commands[n].help)
	}
}
