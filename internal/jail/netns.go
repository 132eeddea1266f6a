package jail

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// nsGetNSType is NS_GET_NSTYPE, _IO(0xb7, 0x3) in linux/nsfs.h (not in
// x/sys): asked of a namespace file, it answers the namespace's CLONE_NEW*
// type.
const nsGetNSType = 0xb703

// checkNetNS reports whether path names a network namespace, so that a
// wrong --netns fails before anything is built rather than in the child.
func checkNetNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("--netns: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlRetInt(fd, nsGetNSType)
	if err != nil {
		return fmt.Errorf("--netns %s is not a namespace file (like /var/run/netns/NAME): %w", path, err)
	}
	if t != unix.CLONE_NEWNET {
		return fmt.Errorf("--netns %s is a namespace, but not a network namespace", path)
	}
	return nil
}
