package jail

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// dropPrivileges leaves the calling thread with uid and gid, no
// supplementary groups, empty capability sets (bounding, ambient,
// inheritable, permitted, effective) and no_new_privs, so that nothing it
// execs can gain a privilege back: not through file capabilities, not
// through a set-user-ID file. The order matters: dropping bounding
// capabilities needs CAP_SETPCAP, so it comes before the uid change.
func dropPrivileges(uid, gid int) error {
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("clear supplementary groups: %w", err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("set gid %d: %w", gid, err)
	}
	for c := 0; c < 64; c++ {
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err == unix.EINVAL {
			break // past the kernel's last capability
		}
		if err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("set uid %d: %w", uid, err)
	}
	// A uid change from 0 clears the permitted and effective sets but
	// keeps the inheritable one, and a uid of 0 keeps them all: clear
	// all three explicitly (dropping needs no privilege).
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3: two 32-bit halves
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear capabilities: %w", err)
	}
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities back: %w", err)
	}
	if data != [2]unix.CapUserData{} {
		return fmt.Errorf("capabilities left after dropping them all: %+v", data)
	}
	return nil
}
