package safefile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Dir is a directory opened once: files are created in it and renamed
// within it by descriptor, so that the directory's path changing later
// changes nothing. A symbolic link given as the directory's own path is
// followed (the caller chose it); no link inside it ever is.
type Dir struct {
	f    *os.File
	path string
}

// OpenDir opens the directory at path.
func OpenDir(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open directory", Path: path, Err: err}
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// DirOf is the Dir of a directory its caller opened (and checked); the
// Dir owns f from then on.
func DirOf(f *os.File) *Dir { return &Dir{f: f, path: f.Name()} }

// Path is the path the directory was opened by.
func (d *Dir) Path() string { return d.path }

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// Sync makes the directory's entries durable.
func (d *Dir) Sync() error { return d.f.Sync() }

// Pending is a new file in a Dir under a temporary name; Commit renames it
// over its final name, Abort removes it.
type Pending struct {
	f    *os.File
	dir  *Dir
	tmp  string
	name string
	done bool
}

// Create makes a new, empty regular file that Commit will name name
// (a plain file name, no slashes). It is created under a random name with
// O_EXCL|O_NOFOLLOW and mode 0600, so whatever already sits in the
// directory, under the final name or any other, is never opened.
func (d *Dir) Create(name string) (*Pending, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return nil, fmt.Errorf("create %q in %s: not a plain file name", name, d.path)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := "." + name + ".tmp-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(int(d.f.Fd()), tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: filepath.Join(d.path, tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, name))
	p := &Pending{f: f, dir: d, tmp: tmp, name: name}
	// O_EXCL made it, so it is ours and regular; checked anyway, on the
	// descriptor, since everything written next trusts it.
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		p.Abort()
		if err == nil {
			err = &KindError{Path: filepath.Join(d.path, tmp), Mode: st.Mode(), Want: "regular file"}
		}
		return nil, err
	}
	return p, nil
}

// File is the open file to write; its Name is the final path.
func (p *Pending) File() *os.File { return p.f }

// Commit syncs and closes the file, renames it over its final name (which
// replaces whatever entry was there, a link included, never what a link
// points to) and syncs the directory.
func (p *Pending) Commit() error {
	if p.done {
		return errors.New("safefile: commit after commit or abort")
	}
	final := filepath.Join(p.dir.path, p.name)
	if err := p.f.Sync(); err != nil {
		p.Abort()
		return err
	}
	if err := p.f.Close(); err != nil {
		p.done = true
		unix.Unlinkat(int(p.dir.f.Fd()), p.tmp, 0)
		return err
	}
	p.done = true
	dfd := int(p.dir.f.Fd())
	if err := unix.Renameat(dfd, p.tmp, dfd, p.name); err != nil {
		unix.Unlinkat(dfd, p.tmp, 0)
		return &os.LinkError{Op: "rename", Old: filepath.Join(p.dir.path, p.tmp), New: final, Err: err}
	}
	// The rename is durable only once the directory entry is on disk.
	if err := p.dir.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", p.dir.path, err)
	}
	return nil
}

// Abort closes and removes the temporary file; after Commit it does
// nothing, so it can be deferred.
func (p *Pending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	unix.Unlinkat(int(p.dir.f.Fd()), p.tmp, 0)
}
