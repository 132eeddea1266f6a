package virtionet

import (
	"bytes"
	"net"
	"testing"
)

// The announcement is RFC 903's reverse ARP request, byte for byte as a
// switch parses it, after a vnet header of zeros.
func TestRARPFrameLayout(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	f := rarpFrame(mac)
	if len(f) != headerLen+60 {
		t.Fatalf("frame of %d bytes, want vnet header + 60", len(f))
	}
	if !bytes.Equal(f[:headerLen], make([]byte, headerLen)) {
		t.Errorf("vnet header % x, want zeros", f[:headerLen])
	}
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // from the guest
		0x80, 0x35, // RARP
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x03, // Ethernet, IPv4, lengths, request reverse
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0, 0, 0, // sender
		0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0, 0, 0, // target
	}
	eth := f[headerLen:]
	if !bytes.Equal(eth[:len(want)], want) {
		t.Errorf("frame\n% x\nwant\n% x", eth[:len(want)], want)
	}
	if !bytes.Equal(eth[len(want):], make([]byte, 60-len(want))) {
		t.Errorf("padding % x, want zeros", eth[len(want):])
	}
}
