package main

import (
	"errors"
	"fmt"
)

// probeCmd connects once and closes at once: whether something listens
// at the address. busybox nc cannot do this (it has no -z and, with
// nothing to send, waits for the peer to close), and a migration
// receiver over TLS takes a connection that closes before its handshake
// as a refused peer and keeps waiting, so probing it is harmless.
func probeCmd(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: probe tcp|unix|vsock ADDRESS")
	}
	s, err := dial(args[0], args[1])
	if err != nil {
		return fmt.Errorf("nothing answers at %s %s: %w", args[0], args[1], err)
	}
	return s.Close()
}
