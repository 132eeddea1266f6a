package kvm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenMissingDevice(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "kvm"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing path: err = %v, want fs.ErrNotExist", err)
	}
}

func TestOpenUnreadableDevice(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions")
	}
	path := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(path, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Open without permission: err = %v, want fs.ErrPermission", err)
	}
}

// A regular file takes the same ioctl path as /dev/kvm and answers ENOTTY,
// which shows the request reaches the kernel and its errno comes back
// wrapped with the request's name.
func TestIoctlOnNonKVMFileReportsErrno(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-kvm")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sys, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()

	_, err = sys.APIVersion()
	if !errors.Is(err, unix.ENOTTY) {
		t.Errorf("APIVersion on a regular file: err = %v, want ENOTTY", err)
	}
	if err == nil || err.Error()[:len("KVM_GET_API_VERSION")] != "KVM_GET_API_VERSION" {
		t.Errorf("error %v does not start with the request name", err)
	}
	if _, err := sys.SupportedCPUID(); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("SupportedCPUID on a regular file: err = %v, want ENOTTY", err)
	}
	if _, err := sys.MSRIndexList(); !errors.Is(err, unix.ENOTTY) {
		t.Errorf("MSRIndexList on a regular file: err = %v, want ENOTTY", err)
	}

	if err := sys.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.APIVersion(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("APIVersion after Close: err = %v, want os.ErrClosed", err)
	}
}
