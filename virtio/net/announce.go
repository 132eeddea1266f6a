package virtionet

import (
	"encoding/binary"
	"fmt"
	"net"
)

// Reverse ARP (RFC 903) as QEMU sends it to announce a migrated guest.
const (
	etherTypeRARP     = 0x8035
	etherTypeIPv4     = 0x0800
	arpHardwareEther  = 1
	rarpRequestOp     = 3
	minEthernetFrame  = 60 // without the frame check sequence
	rarpPayloadLength = 28
)

// rarpFrame is a broadcast RARP request from mac, after a zero vnet
// header (no offload, nothing to checksum).
func rarpFrame(mac net.HardwareAddr) []byte {
	f := make([]byte, headerLen+minEthernetFrame)
	eth := f[headerLen:]
	copy(eth[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(eth[6:12], mac)
	binary.BigEndian.PutUint16(eth[12:], etherTypeRARP)
	p := eth[14 : 14+rarpPayloadLength]
	binary.BigEndian.PutUint16(p[0:], arpHardwareEther)
	binary.BigEndian.PutUint16(p[2:], etherTypeIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], rarpRequestOp)
	copy(p[8:14], mac)  // sender hardware address
	copy(p[18:24], mac) // target hardware address; both IPs stay 0
	return f
}

// Announce sends one broadcast RARP frame from the guest's MAC address
// out of the TAP, so that bridges and switches learn at once that the
// guest is behind this port now (after a migration). Guests whose drivers
// announce themselves do not need it, and it does them no harm.
func (d *Device) Announce() error {
	if _, err := d.tap.Write(rarpFrame(d.MAC())); err != nil {
		return fmt.Errorf("announce %s on %s: %w", d.MAC(), d.tapName, err)
	}
	return nil
}
