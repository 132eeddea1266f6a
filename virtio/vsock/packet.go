package vsock

import "encoding/binary"

// Wire constants of virtio 1.2 section 5.10.6.
const (
	// HostCID is the well-known address of the host.
	HostCID = 2
	// headerSize is sizeof(struct virtio_vsock_hdr).
	headerSize = 44

	typeStream = 1

	opRequest       = 1
	opResponse      = 2
	opRst           = 3
	opShutdown      = 4
	opRW            = 5
	opCreditUpdate  = 6
	opCreditRequest = 7

	// Flags of a SHUTDOWN packet: the sender will receive / send no more.
	shutdownRcv  = 1
	shutdownSend = 2

	// eventTransportReset is the id of struct virtio_vsock_event the
	// device posts when the guest's connections no longer exist.
	eventTransportReset = 0
	eventSize           = 4
)

// header is struct virtio_vsock_hdr.
type header struct {
	SrcCID   uint64
	DstCID   uint64
	SrcPort  uint32
	DstPort  uint32
	Len      uint32
	Type     uint16
	Op       uint16
	Flags    uint32
	BufAlloc uint32
	FwdCnt   uint32
}

func decodeHeader(b []byte) header {
	le := binary.LittleEndian
	return header{
		SrcCID:   le.Uint64(b[0:]),
		DstCID:   le.Uint64(b[8:]),
		SrcPort:  le.Uint32(b[16:]),
		DstPort:  le.Uint32(b[20:]),
		Len:      le.Uint32(b[24:]),
		Type:     le.Uint16(b[28:]),
		Op:       le.Uint16(b[30:]),
		Flags:    le.Uint32(b[32:]),
		BufAlloc: le.Uint32(b[36:]),
		FwdCnt:   le.Uint32(b[40:]),
	}
}

func (h header) encode(b []byte) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], h.SrcCID)
	le.PutUint64(b[8:], h.DstCID)
	le.PutUint32(b[16:], h.SrcPort)
	le.PutUint32(b[20:], h.DstPort)
	le.PutUint32(b[24:], h.Len)
	le.PutUint16(b[28:], h.Type)
	le.PutUint16(b[30:], h.Op)
	le.PutUint32(b[32:], h.Flags)
	le.PutUint32(b[36:], h.BufAlloc)
	le.PutUint32(b[40:], h.FwdCnt)
}

// rstReply is the RST that answers h when no connection can take it: the
// addresses swapped, nothing else.
func rstReply(h header) header {
	return header{
		SrcCID: h.DstCID, DstCID: h.SrcCID,
		SrcPort: h.DstPort, DstPort: h.SrcPort,
		Type: typeStream, Op: opRst,
	}
}
