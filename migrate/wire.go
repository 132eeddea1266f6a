package migrate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync"

	"github.com/ternvm/tern/migrate/snapshot"
)

// The stream's framing; PROTOCOL.md is the reference.
const (
	preambleMagic   = "TERNMIG\x00"
	protocolVersion = 1
	preambleSize    = 8 + 4 + 4
	headerSize      = 16
	trailerSize     = 4
	// preambleDisks is the source's preamble flag saying that it streams
	// disks (disk-extents messages follow). A destination that predates
	// them refuses the flag at once, before anything is copied.
	preambleDisks = 1
)

// castagnolis gives CRC32C, which x86 computes in hardware (SSE 4.2), so
// checksumming every page costs little next to moving it. It is built
// once and only read.
//
// It is made on first use, not at package init: building it takes about
// 0.15 ms, which every tern start (most never migrate) would pay.
var castagnolis = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// msgType is a message's first header byte.
type msgType uint8

const (
	msgHello       msgType = 1  // S->D: JSON Hello
	msgReply       msgType = 2  // D->S: JSON reply; an empty error accepts
	msgPages       msgType = 3  // S->D: a run table and page data
	msgState       msgType = 4  // S->D: a snapshot state stream
	msgReady       msgType = 5  // D->S: loaded, waiting for the commit
	msgCommit      msgType = 6  // S->D: run the guest
	msgRunning     msgType = 7  // D->S: JSON, the guest runs
	msgAbort       msgType = 8  // either way: JSON reason
	msgDiskExtents msgType = 10 // S->D: streamed disk ranges (with preambleDisks)
	// Reserved: a receiver refuses it until a version defines it.
	msgPageRequest msgType = 9 // D->S: post-copy page fault
)

// Bounds of a pages message; a receiver refuses anything beyond them.
const (
	maxRuns         = 4096
	maxPagesData    = 8 << 20
	runEntrySize    = 16
	pagesHeaderSize = 8
	runZero         = 1 // run flag: all pages zero, no data follows
)

// Bounds of a disk-extents message, and of the disks a hello announces.
const (
	maxExtents      = 4096
	maxDiskData     = 8 << 20
	extentEntrySize = 24
	diskHeaderSize  = 8
	extentZero      = 1 // extent flag: the range reads as zeroes, no data follows
	maxDisks        = 256
)

type msgSpec struct {
	name     string
	max      uint32 // payload bytes
	toDest   bool   // the source sends it
	toSource bool   // the destination sends it
	reserved bool
}

func (t msgType) spec() (msgSpec, bool) {
	switch t {
	case msgHello:
		return msgSpec{name: "hello", max: 1 << 20, toDest: true}, true
	case msgReply:
		return msgSpec{name: "reply", max: 64 << 10, toSource: true}, true
	case msgPages:
		return msgSpec{name: "pages", max: pagesHeaderSize + maxRuns*runEntrySize + maxPagesData, toDest: true}, true
	case msgState:
		return msgSpec{name: "state", max: snapshot.MaxStateSize, toDest: true}, true
	case msgReady:
		return msgSpec{name: "ready", max: 0, toSource: true}, true
	case msgCommit:
		return msgSpec{name: "commit", max: 0, toDest: true}, true
	case msgRunning:
		return msgSpec{name: "running", max: 4 << 10, toSource: true}, true
	case msgAbort:
		return msgSpec{name: "abort", max: 64 << 10, toDest: true, toSource: true}, true
	case msgPageRequest:
		return msgSpec{name: "page-request", toSource: true, reserved: true}, true
	case msgDiskExtents:
		return msgSpec{name: "disk-extents", max: diskHeaderSize + maxExtents*extentEntrySize + maxDiskData, toDest: true}, true
	}
	return msgSpec{}, false
}

func (t msgType) String() string {
	if s, ok := t.spec(); ok {
		return s.name
	}
	return fmt.Sprintf("type %d", uint8(t))
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// earlyEOF turns the end of the stream into io.ErrUnexpectedEOF: in this
// protocol no message may be the last one a reader sees but Running.
func earlyEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func appendPreamble(b []byte, flags uint32) []byte {
	b = append(b, preambleMagic...)
	b = binary.LittleEndian.AppendUint32(b, protocolVersion)
	return binary.LittleEndian.AppendUint32(b, flags)
}

// readPreamble reads and checks the peer's preamble, refusing a flag
// outside allowed, and returns its flags.
func readPreamble(r io.Reader, allowed uint32) (uint32, error) {
	var p [preambleSize]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return 0, fmt.Errorf("reading the peer's preamble: the stream ended early: %w", earlyEOF(err))
	}
	if string(p[:8]) != preambleMagic {
		return 0, protoErr("the peer is not a tern migration endpoint (preamble %q)", p[:8])
	}
	if v := binary.LittleEndian.Uint32(p[8:]); v != protocolVersion {
		return 0, protoErr("the peer speaks migration protocol version %d, this tern speaks version %d", v, protocolVersion)
	}
	f := binary.LittleEndian.Uint32(p[12:])
	if f&^allowed != 0 {
		return 0, protoErr("the peer's preamble has unknown flags %#x", f&^allowed)
	}
	return f, nil
}

// header is a checked message header.
type header struct {
	typ    msgType
	length uint32
	index  uint32 // the message's sequence number, for error messages
}

func (h header) label() string { return fmt.Sprintf("message %d (%s)", h.index, h.typ) }

// msgReader reads one direction's messages, checking the framing before
// it trusts any of it.
type msgReader struct {
	r      io.Reader
	seq    uint32 // the sequence number the next message must carry
	fromSr bool   // the peer is the source
	hdr    [headerSize]byte
}

// next reads and checks a header: its checksum first (nothing else in it
// means anything before), then the sequence number, the type, the flags
// and the length against the type's bound, so that no payload buffer is
// sized by a length this check has not passed.
func (mr *msgReader) next() (header, error) {
	n := mr.seq
	if _, err := io.ReadFull(mr.r, mr.hdr[:]); err != nil {
		return header{}, fmt.Errorf("message %d: the stream ended early: %w", n, earlyEOF(err))
	}
	h := mr.hdr[:]
	if crc32.Checksum(h[:12], castagnolis()) != binary.LittleEndian.Uint32(h[12:]) {
		return header{}, protoErr("message %d: header checksum mismatch", n)
	}
	if s := binary.LittleEndian.Uint32(h[8:]); s != n {
		return header{}, protoErr("message %d: sequence %d, expected %d", n, s, n)
	}
	t := msgType(h[0])
	spec, ok := t.spec()
	if !ok {
		return header{}, protoErr("message %d: unknown type %d", n, h[0])
	}
	if spec.reserved {
		return header{}, protoErr("message %d: type %d (%s) is reserved and not supported by protocol version %d", n, h[0], spec.name, protocolVersion)
	}
	if (mr.fromSr && !spec.toDest) || (!mr.fromSr && !spec.toSource) {
		return header{}, protoErr("message %d: a %s message cannot come from this side", n, spec.name)
	}
	if h[1] != 0 || h[2] != 0 || h[3] != 0 {
		return header{}, protoErr("message %d (%s): unknown flags %#x or reserved bits %#x", n, spec.name, h[1], binary.LittleEndian.Uint16(h[2:]))
	}
	length := binary.LittleEndian.Uint32(h[4:])
	if length > spec.max {
		return header{}, protoErr("message %d: %s message of %d bytes exceeds %d", n, spec.name, length, spec.max)
	}
	mr.seq++
	return header{typ: t, length: length, index: n}, nil
}

// payload reads h's whole payload and its checksum. The buffer grows
// with what actually arrives, so a short stream costs what it holds, not
// what its header declares.
func (mr *msgReader) payload(h header) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(mr.r, int64(h.length)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.label(), err)
	}
	if len(data) != int(h.length) {
		return nil, fmt.Errorf("%s: the stream ended early after %d of %d payload bytes: %w", h.label(), len(data), h.length, io.ErrUnexpectedEOF)
	}
	if err := mr.trailer(h, crc32.Checksum(data, castagnolis())); err != nil {
		return nil, err
	}
	return data, nil
}

// trailer reads the payload checksum and compares it with sum.
func (mr *msgReader) trailer(h header, sum uint32) error {
	var t [trailerSize]byte
	if _, err := io.ReadFull(mr.r, t[:]); err != nil {
		return fmt.Errorf("%s: the stream ended early in the payload checksum: %w", h.label(), earlyEOF(err))
	}
	if binary.LittleEndian.Uint32(t[:]) != sum {
		return protoErr("%s: payload checksum mismatch", h.label())
	}
	return nil
}

// payloadReader reads a payload piecewise (pages land straight in guest
// memory), summing as it goes and never past the declared length.
type payloadReader struct {
	r    io.Reader
	h    header
	left uint32
	sum  uint32
}

func (pr *payloadReader) readFull(p []byte) error {
	if uint64(len(p)) > uint64(pr.left) {
		// The caller checks lengths first; this guards the bound anyway.
		return protoErr("%s: payload shorter than its contents", pr.h.label())
	}
	n, err := io.ReadFull(pr.r, p)
	pr.sum = crc32.Update(pr.sum, castagnolis(), p[:n])
	pr.left -= uint32(n)
	if err != nil {
		return fmt.Errorf("%s: the stream ended early with %d payload bytes missing: %w", pr.h.label(), pr.left, earlyEOF(err))
	}
	return nil
}

// msgWriter writes one direction's messages.
type msgWriter struct {
	w   io.Writer
	seq uint32
	// bytes counts what went on the wire, preamble included.
	bytes uint64
	// broken: a write failed, possibly within a message, so the peer can
	// no longer parse anything after it.
	broken bool
	hdr    [headerSize]byte
	trl    [trailerSize]byte
	bufs   net.Buffers
}

func (mw *msgWriter) preamble(flags uint32) error {
	_, err := mw.w.Write(appendPreamble(nil, flags))
	if err != nil {
		mw.broken = true
		return fmt.Errorf("writing the preamble: %w", err)
	}
	mw.bytes += preambleSize
	return nil
}

// write sends one message whose payload is parts, back to back. The
// parts go out as they are through net.Buffers (one writev on TCP and
// Unix sockets), so page data is not copied here. It returns how many
// bytes left this process, which tells whether the peer may have seen
// any of the message.
func (mw *msgWriter) write(t msgType, parts ...[]byte) (int64, error) {
	spec, _ := t.spec()
	var n uint64
	var sum uint32
	for _, p := range parts {
		n += uint64(len(p))
		sum = crc32.Update(sum, castagnolis(), p)
	}
	if n > uint64(spec.max) {
		return 0, fmt.Errorf("a %s message of %d bytes exceeds the protocol's %d", spec.name, n, spec.max)
	}
	h := mw.hdr[:]
	h[0], h[1], h[2], h[3] = byte(t), 0, 0, 0
	binary.LittleEndian.PutUint32(h[4:], uint32(n))
	binary.LittleEndian.PutUint32(h[8:], mw.seq)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnolis()))
	binary.LittleEndian.PutUint32(mw.trl[:], sum)
	mw.bufs = append(mw.bufs[:0], h)
	mw.bufs = append(mw.bufs, parts...)
	mw.bufs = append(mw.bufs, mw.trl[:])
	// WriteTo consumes its receiver; bufs keeps the backing array.
	bufs := mw.bufs
	wrote, err := bufs.WriteTo(mw.w)
	mw.bytes += uint64(wrote)
	clear(mw.bufs) // do not pin guest memory or payloads
	if err != nil {
		mw.broken = true
		return wrote, fmt.Errorf("writing message %d (%s): %w", mw.seq, spec.name, err)
	}
	mw.seq++
	return wrote, nil
}

// reasonMsg is the payload of reply and abort messages.
type reasonMsg struct {
	Error string `json:"error"`
}

// runningMsg is the payload of the running message.
type runningMsg struct {
	// Time is the destination's wall clock when its vCPUs started, for
	// the operator to compare clocks.
	Time string `json:"time"`
}
