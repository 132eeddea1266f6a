package virtionet

import (
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tapFlags: a TAP (Ethernet frames) with no packet-information prefix and
// with a vnet header on every frame. Single queue: one reader, one writer.
const tapFlags = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR

// lookupTAP reports whether an interface called name exists, and fails
// when it exists but is not a TAP.
func lookupTAP(name string) (exists bool, err error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return false, nil
		}
		return false, fmt.Errorf("look up interface %q: %w", name, err)
	}
	tt, ok := link.(*netlink.Tuntap)
	if !ok {
		return true, fmt.Errorf("%w: %q is a %s interface", ErrNotTAP, name, link.Type())
	}
	if tt.Mode != netlink.TUNTAP_MODE_TAP {
		return true, fmt.Errorf("%w: %q is a TUN (layer 3) device", ErrNotTAP, name)
	}
	if tt.Flags&netlink.TUNTAP_MULTI_QUEUE != 0 {
		return true, fmt.Errorf("%w: %q is a multi-queue TAP; tern uses single-queue TAPs", ErrTAPUnusable, name)
	}
	return true, nil
}

// openTAP attaches to the TAP called name, creating it when it does not
// exist. A TAP created this way is not persistent: the kernel deletes it
// when the file is closed, even if tern dies first.
func openTAP(name string, create bool) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: open /dev/net/tun: %w", ErrTAPUnusable, err)
	}
	if err := setupTAP(fd, name, create); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The descriptor is non-blocking, so os.NewFile hands it to the
	// runtime poller: reads park the goroutine, and deadlines and Close
	// wake it.
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}

func setupTAP(fd int, name string, create bool) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrBadName, name, err)
	}
	flags := uint16(tapFlags)
	if create {
		// Fail rather than share a TAP someone else made meanwhile.
		flags |= unix.IFF_TUN_EXCL
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		why := ""
		switch {
		case errors.Is(err, unix.EBUSY) && !create:
			why = " (another process has it open)"
		case errors.Is(err, unix.EPERM):
			why = " (not permitted: tern needs CAP_NET_ADMIN, or to be the TAP's owner)"
		}
		return fmt.Errorf("%w: TUNSETIFF %q%s: %w", ErrTAPUnusable, name, why, err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, headerLen); err != nil {
		return fmt.Errorf("%w: TUNSETVNETHDRSZ %d on %q: %w", ErrTAPUnusable, headerLen, name, err)
	}
	// No offloads until a driver accepts some: until then the kernel
	// must hand over only complete, checksummed frames.
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0); err != nil {
		return fmt.Errorf("%w: TUNSETOFFLOAD on %q: %w", ErrTAPUnusable, name, err)
	}
	return nil
}

// setOffloads tells the kernel which offloads the guest's driver takes.
func setOffloads(tap *os.File, flags int) error {
	rc, err := tap.SyscallConn()
	if err != nil {
		return fmt.Errorf("TAP descriptor: %w", err)
	}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, flags)
	}); err != nil {
		return fmt.Errorf("TAP descriptor: %w", err)
	}
	if ioctlErr != nil {
		return fmt.Errorf("TUNSETOFFLOAD %#x: %w", flags, ioctlErr)
	}
	return nil
}

// findBridge returns the bridge called name.
func findBridge(name string) (netlink.Link, error) {
	if err := validateIfName(name); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil, fmt.Errorf("%w: %q", ErrNoBridge, name)
		}
		return nil, fmt.Errorf("look up bridge %q: %w", name, err)
	}
	if link.Type() != "bridge" {
		return nil, fmt.Errorf("%w: %q is a %s interface", ErrNotBridge, name, link.Type())
	}
	return link, nil
}

// plugTAP puts the TAP in the bridge, when there is one, and brings it up.
func plugTAP(name string, bridge netlink.Link) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up TAP %q: %w", name, err)
	}
	if bridge != nil {
		if err := netlink.LinkSetMaster(link, bridge); err != nil {
			return fmt.Errorf("attach TAP %q to bridge %q: %w", name, bridge.Attrs().Name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring TAP %q up: %w", name, err)
	}
	return nil
}
