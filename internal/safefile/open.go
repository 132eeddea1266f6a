package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSymlink is wrapped when a path opened without following links is a
// symbolic link.
var ErrSymlink = errors.New("is a symbolic link")

// Kind is a set of file types a caller accepts.
type Kind uint8

// File types Open can accept.
const (
	Regular Kind = 1 << iota
	BlockDevice
	FIFO
)

// String names the kinds in k, as "regular file or block device".
func (k Kind) String() string {
	var names []string
	for _, n := range []struct {
		k    Kind
		name string
	}{{Regular, "regular file"}, {BlockDevice, "block device"}, {FIFO, "FIFO"}} {
		if k&n.k != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, " or ")
}

func (k Kind) allows(mode fs.FileMode) bool {
	t := mode.Type()
	switch {
	case t == 0:
		return k&Regular != 0
	case t&fs.ModeNamedPipe != 0:
		return k&FIFO != 0
	case t&fs.ModeDevice != 0 && t&fs.ModeCharDevice == 0:
		return k&BlockDevice != 0
	}
	return false
}

// Open opens path with flag (O_RDONLY, O_WRONLY or O_RDWR, with O_CREAT,
// O_NOFOLLOW and so on as the caller wants; O_TRUNC is applied only once
// the file proved regular) and returns it if its type is one of allowed,
// as fstat on the open descriptor says. The open itself is non-blocking,
// so that a FIFO in place of a file is reported rather than waited on;
// the descriptor is made blocking again before it is returned. A FIFO
// opened for writing that has no reader fails with ENXIO.
func Open(path string, flag int, perm os.FileMode, allowed Kind) (*os.File, fs.FileInfo, error) {
	trunc := flag&unix.O_TRUNC != 0
	flag &^= unix.O_TRUNC
	fd, err := unix.Open(path, flag|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, uint32(perm.Perm()))
	if err != nil {
		if errors.Is(err, unix.ELOOP) && flag&unix.O_NOFOLLOW != 0 {
			if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
				return nil, nil, fmt.Errorf("%s %w; tern does not follow it", path, ErrSymlink)
			}
		}
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !allowed.allows(st.Mode()) {
		f.Close()
		return nil, nil, &KindError{Path: path, Mode: st.Mode(), Want: allowed.String()}
	}
	// Blocking again: readers and writers of tern's files expect it, and
	// os.File, made from a descriptor that was blocking at NewFile, never
	// sees EAGAIN.
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err == nil && trunc && st.Mode().IsRegular() {
		err = f.Truncate(0)
	}
	if err != nil {
		f.Close()
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return f, st, nil
}

// OpenRegular opens path read-only if it is a regular file.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	return Open(path, unix.O_RDONLY, 0, Regular)
}
