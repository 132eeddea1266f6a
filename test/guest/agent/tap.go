package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mkTAP creates a persistent TAP interface that outlives this process and
// every tern that opens it, the way `ip tuntap add` does (busybox's ip
// cannot): a scenario that restarts tern keeps the host's end, its address
// and the connections over it.
func mkTAP(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one interface name")
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	ifr, err := unix.NewIfreq(args[0])
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(int(f.Fd()), unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("TUNSETIFF %s: %w", args[0], err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("TUNSETPERSIST %s: %w", args[0], err)
	}
	return nil
}
