// Package safefile opens and creates the files tern is handed by path in
// ways a hostile local user cannot redirect or stall: files are checked on
// the open descriptor rather than by path, opens cannot block on a FIFO,
// and files written into a directory are created fresh under a random
// name and renamed into place, so no link planted in the directory is
// followed.
package safefile

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrNotRegular is wrapped (by a *KindError) when a file is not of a kind
// the caller accepts.
var ErrNotRegular = errors.New("not a regular file")

// KindError says that the file at Path is of a kind the caller did not
// accept; errors.Is(err, ErrNotRegular) holds.
type KindError struct {
	Path string
	Mode fs.FileMode
	Want string // what was accepted: "regular file", "regular file or FIFO"...
}

func (e *KindError) Error() string {
	return fmt.Sprintf("%s is a %s, not a %s", e.Path, KindOf(e.Mode), e.Want)
}

// Unwrap gives ErrNotRegular.
func (e *KindError) Unwrap() error { return ErrNotRegular }

// KindOf names the type of a file for messages: "regular file", "FIFO",
// "directory" and so on.
func KindOf(mode fs.FileMode) string {
	switch t := mode.Type(); {
	case t == 0:
		return "regular file"
	case t&fs.ModeNamedPipe != 0:
		return "FIFO"
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeSymlink != 0:
		return "symbolic link"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	default:
		return t.String()
	}
}
