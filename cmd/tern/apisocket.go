package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"
)

// listenAPI listens on the Unix socket sock for tern's API. The socket is
// created mode 0600: its API pauses, snapshots and resizes the VM. A
// socket already at sock is replaced only if nothing answers on it (a
// stale one from a tern that died); one that answers belongs to another
// tern and is refused, and any other kind of file is never removed. The
// returned remove deletes the socket only if it is still the one created
// here, so that a later tern's socket at the same path is left alone;
// call it before closing the listener, which keeps the socket's inode
// from being reused meanwhile.
func listenAPI(sock string) (net.Listener, func(), error) {
	if st, err := os.Lstat(sock); err == nil {
		if st.Mode()&fs.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("%s exists and is not a socket", sock)
		}
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			return nil, nil, fmt.Errorf("another process serves %s", sock)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("%s exists and cannot be checked: %w", sock, err)
		}
		// Stale: nothing listens. (A tern starting on it between the
		// dial and the remove would lose its socket; both were started
		// on one path at once.)
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
	}
	// The umask is process-wide: for the moment of this bind, any file
	// another goroutine creates is made without group and other
	// permissions too. That race only makes files more private, unlike
	// listening first and chmodding after, where the socket is open to
	// others for a moment.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return nil, nil, err
	}
	// Close must not unlink by path: the path may name another tern's
	// socket by then.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ours, err := os.Lstat(sock)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	remove := func() {
		if now, err := os.Lstat(sock); err == nil && sameSocket(now, ours) {
			os.Remove(sock)
		}
	}
	return ln, remove, nil
}

// sameSocket reports whether a and b are one file: same device and inode
// and, since a freed inode number is soon reused (our socket unlinked as
// stale, another tern's bound next), the same change time.
func sameSocket(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && os.SameFile(a, b) && sa.Ctim == sb.Ctim
}
