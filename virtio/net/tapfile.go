package virtionet

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// adoptTAP takes a duplicate of the TAP descriptor the caller attached
// (Config.TAPFile) and sets it up as openTAP does its own, after asking
// the kernel (TUNGETIFF) that it is a TUN/TAP descriptor attached to a
// TAP with the flags tern's datapath needs; it returns the TAP's name.
func adoptTAP(cfg Config) (*os.File, string, error) {
	if cfg.Bridge != "" {
		return nil, "", fmt.Errorf("%w: a TAP passed as a file is put into a bridge by its caller; bridge %q cannot be set with it", ErrTAPUnusable, cfg.Bridge)
	}
	rc, err := cfg.TAPFile.SyscallConn()
	if err != nil {
		return nil, "", fmt.Errorf("%w: TAP file %s: %w", ErrTAPUnusable, cfg.TAPFile.Name(), err)
	}
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return nil, "", err
	}
	dup := -1
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		if opErr = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr); opErr != nil {
			why := ""
			switch {
			case errors.Is(opErr, unix.EBADFD):
				why = " (a /dev/net/tun descriptor not attached to an interface: TUNSETIFF it first)"
			case errors.Is(opErr, unix.ENOTTY), errors.Is(opErr, unix.EINVAL):
				why = " (not a /dev/net/tun descriptor)"
			}
			opErr = fmt.Errorf("TUNGETIFF%s: %w", why, opErr)
			return
		}
		if dup, opErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); opErr != nil {
			opErr = fmt.Errorf("duplicate the descriptor: %w", opErr)
		}
	}); err != nil {
		return nil, "", fmt.Errorf("%w: TAP file %s: %w", ErrTAPUnusable, cfg.TAPFile.Name(), err)
	}
	if opErr != nil {
		return nil, "", fmt.Errorf("%w: TAP file %s: %w", ErrNotTAP, cfg.TAPFile.Name(), opErr)
	}
	name, flags := ifr.Name(), ifr.Uint16()
	fail := func(err error) (*os.File, string, error) {
		unix.Close(dup)
		return nil, "", err
	}
	switch {
	case flags&(unix.IFF_TUN|unix.IFF_TAP) != unix.IFF_TAP:
		return fail(fmt.Errorf("%w: TAP file %s is attached to %q, a TUN (layer 3) device", ErrNotTAP, cfg.TAPFile.Name(), name))
	case flags&unix.IFF_MULTI_QUEUE != 0:
		return fail(fmt.Errorf("%w: %q is a multi-queue TAP; tern uses single-queue TAPs", ErrTAPUnusable, name))
	case flags&unix.IFF_VNET_HDR == 0 || flags&unix.IFF_NO_PI == 0:
		return fail(fmt.Errorf("%w: TAP %q was attached without IFF_VNET_HDR and IFF_NO_PI (flags %#x), which tern's datapath needs", ErrTAPUnusable, name, flags))
	case cfg.TAP != "" && cfg.TAP != name:
		return fail(fmt.Errorf("%w: TAP file %s is attached to %q, not %q", ErrTAPUnusable, cfg.TAPFile.Name(), name, cfg.TAP))
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		return fail(fmt.Errorf("%w: TAP %q: set non-blocking: %w", ErrTAPUnusable, name, err))
	}
	if err := unix.IoctlSetPointerInt(dup, unix.TUNSETVNETHDRSZ, headerLen); err != nil {
		return fail(fmt.Errorf("%w: TUNSETVNETHDRSZ %d on %q: %w", ErrTAPUnusable, headerLen, name, err))
	}
	if err := unix.IoctlSetInt(dup, unix.TUNSETOFFLOAD, 0); err != nil {
		return fail(fmt.Errorf("%w: TUNSETOFFLOAD on %q: %w", ErrTAPUnusable, name, err))
	}
	// Non-blocking, so the runtime poller takes it, as openTAP's.
	return os.NewFile(uintptr(dup), "/dev/net/tun:"+name), name, nil
}
