// Package cpuidcache keeps KVM's answer to KVM_GET_SUPPORTED_CPUID in a
// file, so that a monitor started again on the same host reads it instead
// of asking KVM, which runs the CPUID instruction for every leaf: about
// 0.5 ms where CPUID traps to a hypervisor, as on the development
// machine, a seventh of a whole start-up there.
//
// An answer is used only for the host it was asked on, as it is now: the
// same boot (the kernel's boot_id), the same KVM device node (loading the
// KVM module again makes a new node; KVM works out the features it
// supports when it loads) and the same guest permission for dynamic
// xfeatures (ARCH_GET_XCOMP_GUEST_PERM), which KVM's answer for leaf 0xd
// depends on. Anything else (another key, a torn or altered file, a file
// or directory another user could have written) is read as no answer:
// KVM is asked, and the file written anew.
//
// KVM's answer is not quite the same on every CPU of a host: leaf 1's EBX
// and leaves 0xb and 0x1f's EDX hold the APIC ID of the CPU that asked.
// The answer kept holds whichever CPU that was; boot.ShapeCPUID replaces
// those fields with each vCPU's own ID, so any CPU's answer serves.
package cpuidcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ternvm/tern/internal/safefile"
	"github.com/ternvm/tern/kvm"
	"golang.org/x/sys/unix"
)

// FileName is the cache's file in its directory.
const FileName = "kvm-supported-cpuid"

// ErrUnsafe is wrapped when the directory or the file could have been
// written by someone other than this process's user: not owned by it, or
// writable by its group or by others. Such a cache is neither read nor
// written.
var ErrUnsafe = errors.New("could be written by another user")

// Source says where an Answer came from.
type Source int

const (
	// Asked: KVM was asked, and the answer was not kept (no directory,
	// or CacheErr says why).
	Asked Source = iota
	// Kept: KVM was asked and the answer written to the cache.
	Kept
	// Read: the cache held the answer for this host.
	Read
)

func (s Source) String() string {
	switch s {
	case Kept:
		return "kvm, kept"
	case Read:
		return "cache"
	}
	return "kvm"
}

// Answer is KVM's supported CPUID and where it came from.
type Answer struct {
	IDs    []kvm.CPUIDEntry2
	Source Source
	// CacheErr is why the cache could not be used, if it could not: the
	// answer is KVM's then. A missing file, or one kept for another key
	// or damaged, that was written anew is no error.
	CacheErr error
}

// Supported returns sys's KVM_GET_SUPPORTED_CPUID, from the cache in dir
// when it holds the answer for this host as it is now; otherwise it asks
// KVM and writes the answer there. An empty dir means no cache. dir is
// created (mode 0700) if it is missing and its parent is not. Only
// asking KVM can fail Supported.
func Supported(sys *kvm.System, dir string) (Answer, error) {
	if dir == "" {
		ids, err := sys.SupportedCPUID()
		return Answer{IDs: ids}, err
	}
	key, keyErr := hostKeyOf(sys)
	var cacheErr error
	if keyErr == nil {
		ids, err := load(dir, key)
		if err == nil {
			return Answer{IDs: ids, Source: Read}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			cacheErr = err
		}
	} else {
		cacheErr = keyErr
	}
	ids, err := sys.SupportedCPUID()
	if err != nil {
		return Answer{}, err
	}
	a := Answer{IDs: ids, CacheErr: cacheErr}
	if keyErr != nil || errors.Is(cacheErr, ErrUnsafe) {
		return a, nil
	}
	if err := store(dir, key, ids); err != nil {
		a.CacheErr = err
		return a, nil
	}
	a.Source, a.CacheErr = Kept, nil
	return a, nil
}

// hostKey is what an answer holds for: see the package comment.
type hostKey struct {
	bootID         [36]byte
	dev, ino, rdev uint64
	ctimeSec       int64
	ctimeNsec      int64
	xcompGuestPerm uint64
}

const bootIDPath = "/proc/sys/kernel/random/boot_id"

func hostKeyOf(sys *kvm.System) (hostKey, error) {
	var k hostKey
	b, err := readBootID()
	if err != nil {
		return k, fmt.Errorf("host's boot id: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) != len(k.bootID) {
		return k, fmt.Errorf("host's boot id %q: not a UUID", b)
	}
	copy(k.bootID[:], b)
	st, err := sys.Stat()
	if err != nil {
		return k, fmt.Errorf("KVM device: %w", err)
	}
	k.dev, k.ino, k.rdev = st.Dev, st.Ino, st.Rdev
	k.ctimeSec, k.ctimeNsec = st.Ctim.Sec, st.Ctim.Nsec
	if k.xcompGuestPerm, err = xcompGuestPerm(); err != nil {
		return k, fmt.Errorf("guest xfeature permission: %w", err)
	}
	return k, nil
}

// readBootID reads bootIDPath with plain system calls: os.ReadFile would
// register the procfs file with the runtime's poller and take it off
// again, six calls more on the way to a start.
func readBootID() ([]byte, error) {
	fd, err := unix.Open(bootIDPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: bootIDPath, Err: err}
	}
	defer unix.Close(fd)
	b := make([]byte, 64) // a UUID and a newline
	n, err := unix.Read(fd, b)
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: bootIDPath, Err: err}
	}
	return b[:n], nil
}

// The file: magic, the key, the entry count, the entries (struct
// kvm_cpuid_entry2 each, little-endian) and a SHA-256 of all before it
// (no table to build at start-up, unlike a CRC's).
const (
	magic       = "TERNCPU1"
	keySize     = 36 + 4 + 6*8 // the boot id, padding, six 64-bit fields
	headerSize  = len(magic) + keySize + 8
	entrySize   = 40
	maxEntries  = 4096 // as the kvm package's bound on KVM's answer
	sumSize     = sha256.Size
	maxFileSize = headerSize + maxEntries*entrySize + sumSize
)

func (k hostKey) put(b []byte) {
	copy(b, k.bootID[:])
	le := binary.LittleEndian
	for i, v := range []uint64{k.dev, k.ino, k.rdev, uint64(k.ctimeSec), uint64(k.ctimeNsec), k.xcompGuestPerm} {
		le.PutUint64(b[40+8*i:], v)
	}
}

func encode(k hostKey, ids []kvm.CPUIDEntry2) []byte {
	le := binary.LittleEndian
	b := make([]byte, headerSize+len(ids)*entrySize+sumSize)
	copy(b, magic)
	k.put(b[len(magic):])
	le.PutUint32(b[len(magic)+keySize:], uint32(len(ids)))
	for i, e := range ids {
		w := b[headerSize+i*entrySize:]
		for j, v := range []uint32{e.Function, e.Index, e.Flags, e.EAX, e.EBX, e.ECX, e.EDX, e.Padding[0], e.Padding[1], e.Padding[2]} {
			le.PutUint32(w[4*j:], v)
		}
	}
	end := len(b) - sumSize
	sum := sha256.Sum256(b[:end])
	copy(b[end:], sum[:])
	return b
}

// errMismatch is a well-formed file that holds the answer for another
// host key.
var errMismatch = errors.New("kept for another boot, KVM module or xfeature permission")

// decode returns the entries b holds for k.
func decode(b []byte, k hostKey) ([]kvm.CPUIDEntry2, error) {
	le := binary.LittleEndian
	if len(b) < headerSize+sumSize || len(b) > maxFileSize {
		return nil, fmt.Errorf("%d bytes: not a CPUID cache file", len(b))
	}
	if string(b[:len(magic)]) != magic {
		return nil, errors.New("not a CPUID cache file (magic)")
	}
	end := len(b) - sumSize
	if sum := sha256.Sum256(b[:end]); !bytes.Equal(sum[:], b[end:]) {
		return nil, errors.New("checksum mismatch")
	}
	n := int(le.Uint32(b[len(magic)+keySize:]))
	if n > maxEntries || headerSize+n*entrySize != end {
		return nil, fmt.Errorf("%d entries in %d bytes", n, len(b))
	}
	want := make([]byte, keySize)
	k.put(want)
	if !bytes.Equal(b[len(magic):len(magic)+keySize], want) {
		return nil, errMismatch
	}
	ids := make([]kvm.CPUIDEntry2, n)
	for i := range ids {
		w := b[headerSize+i*entrySize:]
		u := func(j int) uint32 { return le.Uint32(w[4*j:]) }
		ids[i] = kvm.CPUIDEntry2{
			Function: u(0), Index: u(1), Flags: u(2),
			EAX: u(3), EBX: u(4), ECX: u(5), EDX: u(6),
			Padding: [3]uint32{u(7), u(8), u(9)},
		}
	}
	return ids, nil
}

// openDir opens dir and checks that only this user could have written
// it; with create, a missing dir is made first. It returns the
// descriptor, for the caller to close. Plain system calls, not os.File:
// the runtime would try each descriptor with its poller, and a start
// would pay four calls more per file.
func openDir(dir string, create bool) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	fd, err := unix.Open(dir, flags, 0)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdir(dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, &os.PathError{Op: "mkdir", Path: dir, Err: err}
		}
		fd, err = unix.Open(dir, flags, 0)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if _, err := checkOwned(fd, dir); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// checkOwned fails unless fd belongs to this process's user and no one
// else may write it; it returns fd's fstat.
func checkOwned(fd int, path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return st, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return st, fmt.Errorf("%s (owner uid %d, mode %#o) %w", path, st.Uid, st.Mode&0o7777, ErrUnsafe)
	}
	return st, nil
}

func load(dir string, k hostKey) ([]kvm.CPUIDEntry2, error) {
	d, err := openDir(dir, false)
	if err != nil {
		return nil, err
	}
	defer unix.Close(d)
	path := filepath.Join(dir, FileName)
	fd, err := unix.Openat(d, FileName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	st, err := checkOwned(fd, path)
	if err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > int64(maxFileSize) {
		return nil, fmt.Errorf("%s: mode %#o, %d bytes: not a CPUID cache file", path, st.Mode, st.Size)
	}
	b := make([]byte, st.Size+1) // one more, to see a file that grew
	n, err := unix.Pread(fd, b, 0)
	if n != int(st.Size) {
		return nil, fmt.Errorf("%s: read %d bytes of a %d-byte file: %v", path, n, st.Size, err)
	}
	ids, err := decode(b[:n], k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

func store(dir string, k hostKey, ids []kvm.CPUIDEntry2) error {
	if len(ids) > maxEntries {
		return fmt.Errorf("%d CPUID entries: more than a cache file holds", len(ids))
	}
	d, err := openDir(dir, true)
	if err != nil {
		return err
	}
	sd := safefile.DirOf(os.NewFile(uintptr(d), dir))
	defer sd.Close()
	p, err := sd.Create(FileName)
	if err != nil {
		return err
	}
	defer p.Abort()
	if _, err := p.File().Write(encode(k, ids)); err != nil {
		return err
	}
	return p.Commit()
}
