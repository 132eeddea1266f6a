package mmds

import "encoding/binary"

// Wire formats: Ethernet II, ARP for IPv4 over Ethernet (RFC 826), IPv4
// (RFC 791) and TCP (RFC 9293). Every parser checks a length before it
// reads a field.
const (
	ethHeaderLen = 14
	etherTypeARP = 0x0806
	etherTypeIP4 = 0x0800

	arpLen       = 28
	arpRequest   = 1
	arpReply     = 2
	ipHeaderLen  = 20
	protoTCP     = 6
	tcpHeaderLen = 20

	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10

	ipFlagDF     = 0x4000
	ipFragMask   = 0x3fff // MF and the fragment offset
	tcpOptEnd    = 0
	tcpOptNOP    = 1
	tcpOptMSS    = 2
	defaultTTL   = 64
	mmdsPort     = 80
	defaultMSS   = 536 // RFC 9293's default when the SYN names none
	ourMSS       = 1460
	ourWindow    = 65535
	maxFrameSize = ethHeaderLen + ipHeaderLen + tcpHeaderLen + ourMSS
)

// DefaultMAC is the hardware address the service answers ARP with, as
// Firecracker's MMDS does.
var DefaultMAC = [6]byte{0x06, 0x01, 0x23, 0x45, 0x67, 0x01}

type ethFrame struct {
	dst, src  [6]byte
	etherType uint16
	payload   []byte
}

func parseEth(b []byte) (ethFrame, bool) {
	if len(b) < ethHeaderLen {
		return ethFrame{}, false
	}
	var f ethFrame
	copy(f.dst[:], b[0:6])
	copy(f.src[:], b[6:12])
	f.etherType = binary.BigEndian.Uint16(b[12:14])
	f.payload = b[ethHeaderLen:]
	return f, true
}

type arpPacket struct {
	op       uint16
	sha, tha [6]byte
	spa, tpa [4]byte
}

func parseARP(b []byte) (arpPacket, bool) {
	if len(b) < arpLen {
		return arpPacket{}, false
	}
	// Ethernet hardware, IPv4 protocol, 6- and 4-byte addresses.
	if binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != etherTypeIP4 || b[4] != 6 || b[5] != 4 {
		return arpPacket{}, false
	}
	var a arpPacket
	a.op = binary.BigEndian.Uint16(b[6:8])
	copy(a.sha[:], b[8:14])
	copy(a.spa[:], b[14:18])
	copy(a.tha[:], b[18:24])
	copy(a.tpa[:], b[24:28])
	return a, true
}

type ipPacket struct {
	src, dst [4]byte
	proto    uint8
	frag     bool // a fragment (MF set or an offset)
	payload  []byte
}

func parseIPv4(b []byte) (ipPacket, bool) {
	if len(b) < ipHeaderLen || b[0]>>4 != 4 {
		return ipPacket{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < ipHeaderLen || total < ihl || total > len(b) {
		return ipPacket{}, false
	}
	var p ipPacket
	p.frag = binary.BigEndian.Uint16(b[6:8])&ipFragMask != 0
	p.proto = b[9]
	copy(p.src[:], b[12:16])
	copy(p.dst[:], b[16:20])
	p.payload = b[ihl:total]
	return p, true
}

type tcpSegment struct {
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            uint8
	window           uint16
	mss              int // from a SYN's option; 0 if none
	payload          []byte
}

func parseTCP(b []byte) (tcpSegment, bool) {
	if len(b) < tcpHeaderLen {
		return tcpSegment{}, false
	}
	off := int(b[12]>>4) * 4
	if off < tcpHeaderLen || off > len(b) {
		return tcpSegment{}, false
	}
	s := tcpSegment{
		srcPort: binary.BigEndian.Uint16(b[0:2]),
		dstPort: binary.BigEndian.Uint16(b[2:4]),
		seq:     binary.BigEndian.Uint32(b[4:8]),
		ack:     binary.BigEndian.Uint32(b[8:12]),
		flags:   b[13],
		window:  binary.BigEndian.Uint16(b[14:16]),
		payload: b[off:],
	}
	opts := b[tcpHeaderLen:off]
	for len(opts) > 0 {
		kind := opts[0]
		if kind == tcpOptEnd {
			break
		}
		if kind == tcpOptNOP {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			break // a malformed option ends the list, as a lenient stack does
		}
		if kind == tcpOptMSS && opts[1] == 4 {
			s.mss = int(binary.BigEndian.Uint16(opts[2:4]))
		}
		opts = opts[opts[1]:]
	}
	return s, true
}

// checksum is the Internet checksum (RFC 1071) of b, folded into sum.
func checksum(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func fold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// buildARPReply answers req, which asked for our address.
func buildARPReply(mac [6]byte, ip [4]byte, req arpPacket) []byte {
	b := make([]byte, ethHeaderLen+arpLen)
	copy(b[0:6], req.sha[:])
	copy(b[6:12], mac[:])
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], etherTypeIP4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], arpReply)
	copy(a[8:14], mac[:])
	copy(a[14:18], ip[:])
	copy(a[18:24], req.sha[:])
	copy(a[24:28], req.spa[:])
	return b
}

// tcpOut describes one segment to send.
type tcpOut struct {
	dstMAC, srcMAC   [6]byte
	src, dst         [4]byte
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            uint8
	mss              bool // carry our MSS option (SYN-ACK)
	id               uint16
	payload          []byte
}

// buildTCP lays out an Ethernet frame with the IPv4 packet and TCP
// segment o describes, checksums filled in.
func buildTCP(o tcpOut) []byte {
	th := tcpHeaderLen
	if o.mss {
		th += 4
	}
	total := ipHeaderLen + th + len(o.payload)
	b := make([]byte, ethHeaderLen+total)
	copy(b[0:6], o.dstMAC[:])
	copy(b[6:12], o.srcMAC[:])
	binary.BigEndian.PutUint16(b[12:14], etherTypeIP4)
	ip := b[ethHeaderLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(total))
	binary.BigEndian.PutUint16(ip[4:6], o.id)
	binary.BigEndian.PutUint16(ip[6:8], ipFlagDF)
	ip[8] = defaultTTL
	ip[9] = protoTCP
	copy(ip[12:16], o.src[:])
	copy(ip[16:20], o.dst[:])
	binary.BigEndian.PutUint16(ip[10:12], fold(checksum(0, ip[:ipHeaderLen])))
	t := ip[ipHeaderLen:]
	binary.BigEndian.PutUint16(t[0:2], o.srcPort)
	binary.BigEndian.PutUint16(t[2:4], o.dstPort)
	binary.BigEndian.PutUint32(t[4:8], o.seq)
	binary.BigEndian.PutUint32(t[8:12], o.ack)
	t[12] = byte(th/4) << 4
	t[13] = o.flags
	binary.BigEndian.PutUint16(t[14:16], ourWindow)
	if o.mss {
		t[20], t[21] = tcpOptMSS, 4
		binary.BigEndian.PutUint16(t[22:24], ourMSS)
	}
	copy(t[th:], o.payload)
	// The pseudo-header: addresses, protocol, TCP length.
	sum := checksum(0, ip[12:20])
	sum += protoTCP + uint32(len(t))
	binary.BigEndian.PutUint16(t[16:18], fold(checksum(sum, t)))
	return b
}
