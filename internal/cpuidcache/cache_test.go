package cpuidcache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/test/tinyguest"
	"golang.org/x/sys/unix"
)

// openKVM returns this machine's /dev/kvm, skipping where there is none
// as every test on /dev/kvm does (tinyguest.RequireKVM, which also says
// which backend it found): these parts need a KVM host (the CI machine
// and the development machine have one).
func openKVM(t *testing.T) *kvm.System {
	t.Helper()
	tinyguest.RequireKVM(t)
	sys, err := kvm.Open("/dev/kvm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	return sys
}

func someKey() hostKey {
	k := hostKey{dev: 5, ino: 1234, rdev: 10<<8 | 232, ctimeSec: 1700000000, ctimeNsec: 42, xcompGuestPerm: 0x2e7}
	copy(k.bootID[:], "0f8fad5b-d9cb-469f-a165-70867728950e")
	return k
}

func someIDs() []kvm.CPUIDEntry2 {
	return []kvm.CPUIDEntry2{
		{Function: 0, EAX: 0xd, EBX: 0x756e6547, ECX: 0x6c65746e, EDX: 0x49656e69},
		{Function: 7, Index: 0, Flags: 1, EBX: 0x219c07ab},
		{Function: 0xd, Index: 1, Flags: 1, EAX: 0xf},
	}
}

func TestKeptAnswerIsReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache") // missing: store makes it
	k := someKey()
	if err := store(dir, k, someIDs()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("directory made as %v (%v), want mode 0700", st.Mode(), err)
	}
	st, err = os.Stat(filepath.Join(dir, FileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file written as %v (%v), want mode 0600", st.Mode(), err)
	}
	got, err := load(dir, k)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, someIDs()) {
		t.Fatalf("read back %+v, kept %+v", got, someIDs())
	}
}

func TestNoFileIsNotExist(t *testing.T) {
	if _, err := load(t.TempDir(), someKey()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("load from an empty directory: %v, want fs.ErrNotExist", err)
	}
}

// Each field of the key is what the answer holds for: another value in
// any of them is another host (or the same one changed) and no answer.
func TestAnotherHostKeyIsNoAnswer(t *testing.T) {
	changes := map[string]func(*hostKey){
		"boot":  func(k *hostKey) { k.bootID[0] ^= 1 },
		"dev":   func(k *hostKey) { k.dev++ },
		"ino":   func(k *hostKey) { k.ino++ },
		"rdev":  func(k *hostKey) { k.rdev++ },
		"ctime": func(k *hostKey) { k.ctimeSec++ },
		"nsec":  func(k *hostKey) { k.ctimeNsec++ },
		"xcomp": func(k *hostKey) { k.xcompGuestPerm |= 1 << 18 },
	}
	for name, change := range changes {
		dir := t.TempDir()
		if err := store(dir, someKey(), someIDs()); err != nil {
			t.Fatal(err)
		}
		k := someKey()
		change(&k)
		if _, err := load(dir, k); !errors.Is(err, errMismatch) {
			t.Errorf("%s changed: %v, want the key mismatch", name, err)
		}
	}
}

// Every byte of the file counts: one flipped anywhere, or the file cut
// short or made longer, and it is refused.
func TestEveryAlteredFileIsRefused(t *testing.T) {
	k := someKey()
	good := encode(k, someIDs())
	if _, err := decode(good, k); err != nil {
		t.Fatalf("the file as written: %v", err)
	}
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x10
		if ids, err := decode(b, k); err == nil {
			t.Fatalf("byte %d flipped: read as %+v", i, ids)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, err := decode(good[:n], k); err == nil {
			t.Fatalf("cut to %d of %d bytes: read", n, len(good))
		}
	}
	if _, err := decode(append(append([]byte(nil), good...), 0), k); err == nil {
		t.Fatal("one byte longer: read")
	}
}

// A cache another user could write is neither read nor written.
func TestWritableByOthersIsUnsafe(t *testing.T) {
	dir := t.TempDir()
	if err := store(dir, someKey(), someIDs()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, FileName)
	if err := os.Chmod(file, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := load(dir, someKey()); !errors.Is(err, ErrUnsafe) {
		t.Errorf("group-writable file: %v, want ErrUnsafe", err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := load(dir, someKey()); !errors.Is(err, ErrUnsafe) {
		t.Errorf("world-writable directory, read: %v, want ErrUnsafe", err)
	}
	if err := store(dir, someKey(), someIDs()); !errors.Is(err, ErrUnsafe) {
		t.Errorf("world-writable directory, write: %v, want ErrUnsafe", err)
	}
}

// A link in the file's place is not followed; writing replaces the link,
// never what it points to.
func TestSymlinkIsNotFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, encode(someKey(), someIDs()), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, FileName)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if ids, err := load(dir, someKey()); err == nil {
		t.Fatalf("read %+v through a link", ids)
	}
	other := someIDs()[:1]
	if err := store(dir, someKey(), other); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("after the write the entry is %v (%v), want a regular file", st.Mode(), err)
	}
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := decode(b, someKey()); err != nil || len(ids) != len(someIDs()) {
		t.Fatalf("the link's target changed: %+v, %v", ids, err)
	}
}

// With KVM: the first call asks and keeps the answer, the next reads the
// file; what it reads is what the file holds (the proof that KVM was not
// asked), and KVM's own answer is the one kept.
func TestSupportedKeepsThenReads(t *testing.T) {
	sys := openKVM(t)
	want, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, err := Supported(sys, dir)
	if err != nil || a.CacheErr != nil || a.Source != Kept {
		t.Fatalf("first call: source %v, cache error %v, error %v; want kept", a.Source, a.CacheErr, err)
	}
	if !sameAnswer(a.IDs, want) {
		t.Fatal("first call's answer differs from KVM's")
	}
	a, err = Supported(sys, dir)
	if err != nil || a.CacheErr != nil || a.Source != Read || !sameAnswer(a.IDs, want) {
		t.Fatalf("second call: source %v, cache error %v, error %v, same answer %v; want KVM's answer read", a.Source, a.CacheErr, err, sameAnswer(a.IDs, want))
	}

	// A file for this host holding something else is taken as it is.
	k, err := hostKeyOf(sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := store(dir, k, someIDs()); err != nil {
		t.Fatal(err)
	}
	if a, err = Supported(sys, dir); err != nil || a.Source != Read || !reflect.DeepEqual(a.IDs, someIDs()) {
		t.Fatalf("planted answer: source %v, error %v, ids %+v; want it read", a.Source, err, a.IDs)
	}

	// A file for another boot, or a damaged one, is replaced by KVM's
	// answer, and that is no error.
	k.bootID[0] ^= 1
	if err := store(dir, k, someIDs()); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged")
	if err := os.Mkdir(damaged, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damaged, FileName), []byte("TERNCPU1 and then nothing right"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, damaged} {
		a, err = Supported(sys, d)
		if err != nil || a.Source != Kept || a.CacheErr != nil || !sameAnswer(a.IDs, want) {
			t.Fatalf("%s: source %v, cache error %v, error %v, same answer %v; want KVM's answer kept", d, a.Source, a.CacheErr, err, sameAnswer(a.IDs, want))
		}
		if a, _ = Supported(sys, d); a.Source != Read {
			t.Fatalf("%s after the rewrite: source %v, want read", d, a.Source)
		}
	}
}

// sameAnswer reports whether two answers of KVM's are the same but for the
// asking CPU's APIC ID (see the package comment): the test's goroutine may
// ask on one CPU and Supported on another.
func sameAnswer(a, b []kvm.CPUIDEntry2) bool {
	return reflect.DeepEqual(withoutAPICID(a), withoutAPICID(b))
}

func withoutAPICID(ids []kvm.CPUIDEntry2) []kvm.CPUIDEntry2 {
	out := append([]kvm.CPUIDEntry2(nil), ids...)
	for i := range out {
		switch out[i].Function {
		case 1:
			out[i].EBX &^= 0xff << 24
		case 0xb, 0x1f:
			out[i].EDX = 0
		}
	}
	return out
}

// The comparison above is not blind: answers asked on different CPUs
// differ only where it says, and a real difference is still one.
func TestSameAnswerIgnoresOnlyTheAPICID(t *testing.T) {
	a := []kvm.CPUIDEntry2{{Function: 1, EAX: 0xa0671, EBX: 0x00020800}, {Function: 0xb, Flags: 1, EDX: 0}}
	b := []kvm.CPUIDEntry2{{Function: 1, EAX: 0xa0671, EBX: 0x01020800}, {Function: 0xb, Flags: 1, EDX: 1}}
	if !sameAnswer(a, b) {
		t.Error("answers from CPU 0 and CPU 1 taken as different")
	}
	b[0].EBX ^= 0x100 // the CLFLUSH line size, not the APIC ID
	if sameAnswer(a, b) {
		t.Error("a difference outside the APIC ID taken as none")
	}
}

// KVM's answer asked on each CPU of this host differs at most in the
// APIC ID, which is why keeping one CPU's answer is sound.
func TestAnswersOfEveryCPUAreTheSameButTheAPICID(t *testing.T) {
	sys := openKVM(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &orig)
	var first []kvm.CPUIDEntry2
	asked := 0
	for cpu := 0; cpu < 1024; cpu++ {
		if !orig.IsSet(cpu) {
			continue
		}
		var one unix.CPUSet
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			t.Fatal(err)
		}
		ids, err := sys.SupportedCPUID()
		if err != nil {
			t.Fatal(err)
		}
		asked++
		if first == nil {
			first = ids
		} else if !sameAnswer(first, ids) {
			t.Errorf("CPU %d's answer differs from the first CPU's beyond the APIC ID", cpu)
		}
	}
	t.Logf("asked on %d CPUs", asked)
}

func TestNoDirectoryAsksKVM(t *testing.T) {
	sys := openKVM(t)
	a, err := Supported(sys, "")
	if err != nil || a.Source != Asked || a.CacheErr != nil || len(a.IDs) == 0 {
		t.Fatalf("no directory: source %v, cache error %v, error %v, %d entries", a.Source, a.CacheErr, err, len(a.IDs))
	}
}

func TestUnsafeDirectoryAsksKVMAndSaysWhy(t *testing.T) {
	sys := openKVM(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	a, err := Supported(sys, dir)
	if err != nil || a.Source != Asked || !errors.Is(a.CacheErr, ErrUnsafe) || len(a.IDs) == 0 {
		t.Fatalf("world-writable directory: source %v, cache error %v, error %v", a.Source, a.CacheErr, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file was written into it: %v", err)
	}
}

// Something other than a regular file in the file's place is not read.
func TestNotARegularFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, FileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if ids, err := load(dir, someKey()); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a directory in the file's place: %+v, %v; want it refused", ids, err)
	}
}
