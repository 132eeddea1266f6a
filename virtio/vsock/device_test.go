package vsock

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ternvm/tern/virtio"
)

// The device plugs into the virtio transports.
var _ virtio.Device = (*Device)(nil)

func TestIdentity(t *testing.T) {
	d, _ := newDevice(t, tGuestCID)
	if got := d.DeviceID(); got != tDeviceID {
		t.Errorf("DeviceID = %d, want %d", got, tDeviceID)
	}
	if got := d.Features(); got&tFeatureSeqpkt != 0 || got != 0 {
		t.Errorf("Features = %#x, want none (no VIRTIO_VSOCK_F_SEQPACKET)", got)
	}
	if got := d.QueueMaxSizes(); !slices.Equal(got, []uint16{256, 256, 256}) {
		t.Errorf("QueueMaxSizes = %v, want rx, tx and event queues of 256", got)
	}
}

func TestConfigSpace(t *testing.T) {
	d, _ := newDevice(t, 0x12345678)
	// struct virtio_vsock_config { le64 guest_cid; }
	full := make([]byte, 8)
	d.ReadConfig(0, full)
	if want := []byte{0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0}; !bytes.Equal(full, want) {
		t.Errorf("guest_cid bytes = % x, want % x", full, want)
	}
	part := make([]byte, 2)
	d.ReadConfig(1, part)
	if want := []byte{0x56, 0x34}; !bytes.Equal(part, want) {
		t.Errorf("config bytes 1-2 = % x, want % x", part, want)
	}
	past := []byte{0, 0, 0, 0}
	d.ReadConfig(8, past)
	if !bytes.Equal(past, make([]byte, 4)) {
		t.Errorf("config past guest_cid = % x, want zeros", past)
	}
	d.WriteConfig(0, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	d.ReadConfig(0, full)
	if want := []byte{0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0}; !bytes.Equal(full, want) {
		t.Errorf("guest_cid after a driver write = % x, want it unchanged % x", full, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("a", 107) // 108 bytes: no room for sun_path's NUL
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"CID 0", Config{GuestCID: 0, SocketPath: filepath.Join(dir, "a")}},
		{"CID 2 (host)", Config{GuestCID: 2, SocketPath: filepath.Join(dir, "b")}},
		{"CID above 32 bits", Config{GuestCID: 1 << 32, SocketPath: filepath.Join(dir, "c")}},
		{"empty path", Config{GuestCID: 3}},
		{"path too long", Config{GuestCID: 3, SocketPath: long}},
		{"existing regular file", Config{GuestCID: 3, SocketPath: file}},
		{"existing directory", Config{GuestCID: 3, SocketPath: dir}},
	} {
		if d, err := New(tc.cfg); err == nil {
			d.Close()
			t.Errorf("%s: New succeeded, want an error", tc.name)
		}
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != "x" {
		t.Errorf("the regular file was touched: %q, %v", data, err)
	}
}

func TestNewReplacesStaleSocketAndCloseRemovesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // leaves a stale socket file behind, as a crashed VMM would
	d, err := New(Config{GuestCID: 3, SocketPath: path})
	if err != nil {
		t.Fatalf("New over a stale socket: %v", err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the device socket: %v", err)
	}
	c.Close()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
	if err := d.Activate(nil, make([]*virtio.Queue, 3), &fakeIRQ{}, 0); err == nil {
		t.Errorf("Activate after Close succeeded")
	}
}
