package block

import (
	"encoding/binary"

	"github.com/ternvm/tern/virtio"
)

// zeroOp describes DISCARD or WRITE_ZEROES, which share a request format.
type zeroOp struct {
	name       string
	feature    uint64
	maxSeg     uint32
	maxSectors uint32
	unmapOK    bool // whether the unmap flag is allowed
}

var (
	discardOp = zeroOp{
		name: "discard", feature: FeatureDiscard,
		maxSeg: MaxDiscardSeg, maxSectors: MaxDiscardSectors,
	}
	writeZeroesOp = zeroOp{
		name: "write-zeroes", feature: FeatureWriteZeroes,
		maxSeg: MaxWriteZeroesSeg, maxSectors: MaxWriteZeroesSectors,
		unmapOK: true,
	}
)

// maxSeg sizes the per-request arrays, so that no request allocates.
const maxSeg = max(MaxDiscardSeg, MaxWriteZeroesSeg)

// segment is one struct virtio_blk_discard_write_zeroes, checked.
type segment struct {
	off, len int64 // bytes
	unmap    bool
}

// discardOrZero checks every segment before touching the image, so that a
// request with one bad segment changes nothing.
func (d *Device) discardOrZero(mem virtio.Memory, r request, acked uint64, op zeroOp) *errRequest {
	if d.cfg.ReadOnly {
		return ioErr("%s on a read-only disk", op.name)
	}
	if acked&op.feature == 0 {
		return unsupported("%s without its feature negotiated", op.name)
	}
	if r.out.len != 0 {
		return ioErr("%s has %d writable bytes before the status", op.name, r.out.len)
	}
	if r.in.len == 0 || r.in.len%segmentLen != 0 {
		return ioErr("%s data of %d bytes is not a whole number of %d-byte segments", op.name, r.in.len, segmentLen)
	}
	count := r.in.len / segmentLen
	if count > uint64(op.maxSeg) {
		return ioErr("%s has %d segments, more than %d", op.name, count, op.maxSeg)
	}
	var raw [maxSeg * segmentLen]byte
	buf := raw[:r.in.len]
	if err := r.in.read(mem, buf); err != nil {
		return ioErr("%s: read segments: %w", op.name, err)
	}
	var segs [maxSeg]segment
	for i := range count {
		s, rerr := d.segment(buf[i*segmentLen:(i+1)*segmentLen], op)
		if rerr != nil {
			return rerr
		}
		segs[i] = s
	}
	for _, s := range segs[:count] {
		if err := d.apply(s, op); err != nil {
			return err
		}
	}
	return nil
}

func (d *Device) segment(b []byte, op zeroOp) (segment, *errRequest) {
	sector := binary.LittleEndian.Uint64(b[0:8])
	num := binary.LittleEndian.Uint32(b[8:12])
	flags := binary.LittleEndian.Uint32(b[12:16])
	if flags&^segmentUnmap != 0 {
		return segment{}, unsupported("%s segment has reserved flags %#x", op.name, flags)
	}
	unmap := flags&segmentUnmap != 0
	if unmap && !op.unmapOK {
		return segment{}, unsupported("%s segment has the unmap flag", op.name)
	}
	if num > op.maxSectors {
		return segment{}, ioErr("%s segment of %d sectors is more than %d", op.name, num, op.maxSectors)
	}
	off, rerr := d.byteRange(sector, uint64(num)*SectorSize)
	if rerr != nil {
		return segment{}, rerr
	}
	return segment{off: off, len: int64(num) * SectorSize, unmap: unmap}, nil
}

func (d *Device) apply(s segment, op zeroOp) *errRequest {
	if s.len == 0 {
		return nil
	}
	defer d.markWritten(s.off, s.len)
	if op.feature == FeatureDiscard {
		// Discard only allows deallocation: where the host cannot punch
		// holes, doing nothing is a correct discard.
		if err := d.disk.punch(s.off, s.len); err != nil && !isUnsupported(err) {
			return ioErr("discard: %w", err)
		}
		return nil
	}
	if s.unmap {
		err := d.disk.punch(s.off, s.len)
		if err == nil {
			return nil
		}
		if !isUnsupported(err) {
			return ioErr("write-zeroes: %w", err)
		}
	}
	if err := d.disk.zeroRange(s.off, s.len); err != nil {
		return ioErr("write-zeroes: %w", err)
	}
	return nil
}
