package virtionet

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/ternvm/tern/virtio"
)

func TestNewRejectsBadTAPNames(t *testing.T) {
	for _, name := range []string{
		"",
		strings.Repeat("t", 16), // IFNAMSIZ is 16 with the NUL
		"tap/0", "tap:0", "tap 0", "tap\t0", "tap%d", ".", "..",
	} {
		_, err := New(Config{TAP: name})
		if !errors.Is(err, ErrBadName) {
			t.Errorf("New(TAP %q) = %v, want ErrBadName", name, err)
		}
	}
	if err := validateIfName(strings.Repeat("t", 15)); err != nil {
		t.Errorf("15-byte name refused: %v", err)
	}
}

func TestNewRejectsBadMACs(t *testing.T) {
	for _, mac := range []net.HardwareAddr{
		{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, // multicast (I/G bit set)
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // broadcast
		{0, 0, 0, 0, 0, 0},                   // all zero
		{0x02, 0, 0, 0, 1},                   // 5 bytes
		{0x02, 0, 0, 0, 0, 0, 0, 1},          // EUI-64
		{},                                   // empty, not nil
	} {
		_, err := New(Config{TAP: "tern0", MAC: mac})
		if !errors.Is(err, ErrBadMAC) {
			t.Errorf("New(MAC % x) = %v, want ErrBadMAC", []byte(mac), err)
		}
	}
}

func TestRandomMACIsLocalUnicast(t *testing.T) {
	seen := map[string]bool{}
	for range 64 {
		mac := randomMAC()
		if len(mac) != 6 || mac[0]&1 != 0 || mac[0]&2 == 0 {
			t.Fatalf("random MAC %s: want 6 bytes, I/G bit clear, U/L bit set", mac)
		}
		if err := validateMAC(mac); err != nil {
			t.Fatal(err)
		}
		seen[mac.String()] = true
	}
	if len(seen) < 60 {
		t.Errorf("64 random MACs gave only %d distinct ones", len(seen))
	}
}

func TestFeaturesOffered(t *testing.T) {
	d := &Device{}
	want := uint64(specCsum | specGuestCsum | specMAC | specGuestTSO4 | specGuestTSO6 | specGuestECN |
		specHostTSO4 | specHostTSO6 | specHostECN | specMrgRxbuf | specStatus)
	if got := d.Features(); got != want {
		t.Errorf("Features() = %#x, want %#x", got, want)
	}
	if d.Features()&(specCtrlVQ|specMQ|specGuestUFO|specHostUFO) != 0 {
		t.Error("offers a control queue, multiqueue or UFO")
	}
	if d.Features()&virtio.ReservedFeatures != 0 {
		t.Error("offers transport-reserved bits")
	}
	if d.DeviceID() != 1 {
		t.Errorf("DeviceID() = %d, want 1 (network card)", d.DeviceID())
	}
	if got := d.QueueMaxSizes(); len(got) != 2 || got[0] != 256 || got[1] != 256 {
		t.Errorf("QueueMaxSizes() = %v, want [256 256] (receiveq1, transmitq1)", got)
	}
}

func TestConfigSpaceLayout(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	d := &Device{mac: mac}

	// struct virtio_net_config: u8 mac[6] at 0, le16 status at 6,
	// VIRTIO_NET_S_LINK_UP = 1.
	all := make([]byte, 8)
	d.ReadConfig(0, all)
	if want := []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x01, 0x00}; string(all) != string(want) {
		t.Errorf("config space = % x, want % x", all, want)
	}
	status := make([]byte, 2)
	d.ReadConfig(6, status)
	if binary.LittleEndian.Uint16(status) != 1 {
		t.Errorf("status = %#x, want VIRTIO_NET_S_LINK_UP", status)
	}
	one := make([]byte, 1)
	d.ReadConfig(3, one)
	if one[0] != 0x12 {
		t.Errorf("mac[3] = %#x, want 0x12", one[0])
	}
	// max_virtqueue_pairs and later fields need features not offered:
	// reads there and past the end give zeros.
	tail := make([]byte, 4)
	d.ReadConfig(8, tail)
	d.ReadConfig(0x100, tail)
	if string(tail) != "\x00\x00\x00\x00" {
		t.Errorf("read past the fields = % x, want zeros", tail)
	}
	// A VERSION_1 driver cannot change the MAC through the config space.
	d.WriteConfig(0, []byte{1, 2, 3, 4, 5, 6})
	d.ReadConfig(0, all)
	if string(all[:6]) != string(mac) {
		t.Errorf("WriteConfig changed mac to % x", all[:6])
	}
}
