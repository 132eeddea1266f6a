package block

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ternvm/tern/virtio"
)

// request is one parsed struct virtio_blk_req.
type request struct {
	typ    uint32
	sector uint64
	in     span // data the driver supplies, after the header
	out    span // room for data the device returns, before the status
}

// ErrNoStatus: a chain has no writable byte to put a status in, so the
// device cannot fail the request and the driver would wait forever.
var ErrNoStatus = errors.New("virtio-blk request has no status byte")

// errRequest is why a request failed with a status other than OK.
type errRequest struct {
	status byte
	err    error
}

func (e *errRequest) Error() string { return fmt.Sprintf("status %d: %v", e.status, e.err) }
func (e *errRequest) Unwrap() error { return e.err }

func ioErr(format string, args ...any) *errRequest {
	return &errRequest{status: StatusIOErr, err: fmt.Errorf(format, args...)}
}

func unsupported(format string, args ...any) *errRequest {
	return &errRequest{status: StatusUnsupp, err: fmt.Errorf(format, args...)}
}

// serve performs the request in c and writes its status byte. It returns
// the used length, the bytes the device wrote: the data it returned and
// the status. A non-nil error means the chain could not be completed
// properly and the device must stop.
func (d *Device) serve(mem virtio.Memory, c *virtio.Chain, acked uint64) (uint32, error) {
	wlen := uint64(c.WritableLen())
	if wlen < statusLen {
		return 0, fmt.Errorf("%w: chain at head %d has no writable buffer", ErrNoStatus, c.Head)
	}
	status, n := byte(StatusOK), uint32(0)
	req, rerr := parse(mem, c)
	if rerr == nil {
		d.imgMu.RLock()
		n, rerr = d.execute(mem, req, acked)
		d.imgMu.RUnlock()
	}
	if rerr != nil {
		status, n = rerr.status, 0
		d.counters.failed.Add(1)
	}
	statusAt := span{bufs: c.Writable, off: wlen - statusLen, len: statusLen}
	if err := statusAt.write(mem, []byte{status}); err != nil {
		return 0, fmt.Errorf("virtio-blk: write status at head %d: %w", c.Head, err)
	}
	return n + statusLen, nil
}

// parse splits the chain into header, data and status. The chain has a
// status byte.
func parse(mem virtio.Memory, c *virtio.Chain) (request, *errRequest) {
	rlen, wlen := uint64(c.ReadableLen()), uint64(c.WritableLen())
	if rlen < headerLen {
		return request{}, ioErr("header needs %d readable bytes, chain has %d", headerLen, rlen)
	}
	var h [headerLen]byte
	if err := (span{bufs: c.Readable, len: headerLen}).read(mem, h[:]); err != nil {
		return request{}, ioErr("read header: %w", err)
	}
	return request{
		typ:    binary.LittleEndian.Uint32(h[0:4]),
		sector: binary.LittleEndian.Uint64(h[8:16]),
		in:     span{bufs: c.Readable, off: headerLen, len: rlen - headerLen},
		out:    span{bufs: c.Writable, len: wlen - statusLen},
	}, nil
}

// execute performs a parsed request and returns the data bytes it wrote
// into the chain. The caller holds imgMu shared.
func (d *Device) execute(mem virtio.Memory, r request, acked uint64) (uint32, *errRequest) {
	switch r.typ {
	case RequestIn:
		return d.read(mem, r)
	case RequestOut:
		return 0, d.write(mem, r)
	case RequestFlush:
		return 0, d.flush(r)
	case RequestGetID:
		return d.getID(mem, r)
	case RequestDiscard:
		return 0, d.discardOrZero(mem, r, acked, discardOp)
	case RequestWriteZeroes:
		return 0, d.discardOrZero(mem, r, acked, writeZeroesOp)
	default:
		return 0, unsupported("request type %d", r.typ)
	}
}

// byteRange checks that length bytes from sector lie inside the disk and
// returns the byte offset.
func (d *Device) byteRange(sector, length uint64) (int64, *errRequest) {
	if length%SectorSize != 0 {
		return 0, ioErr("data length %d is not a multiple of %d", length, SectorSize)
	}
	if sector > d.capacity || length/SectorSize > d.capacity-sector {
		return 0, ioErr("sectors [%d, +%d) pass the capacity of %d", sector, length/SectorSize, d.capacity)
	}
	// capacity*512 is a file size, so it fits an int64.
	return int64(sector * SectorSize), nil
}

func (d *Device) read(mem virtio.Memory, r request) (uint32, *errRequest) {
	if r.in.len != 0 {
		return 0, ioErr("read has %d bytes of driver data after the header", r.in.len)
	}
	base, rerr := d.byteRange(r.sector, r.out.len)
	if rerr != nil {
		return 0, rerr
	}
	err := r.out.each(mem, func(p []byte, pos uint64) error {
		return d.disk.readAt(p, base+int64(pos))
	})
	if err != nil {
		return 0, ioErr("read: %w", err)
	}
	d.counters.reads.Add(1)
	d.counters.readBytes.Add(r.out.len)
	// out.len is below 2^32: it is part of the chain's writable length.
	return uint32(r.out.len), nil
}

func (d *Device) write(mem virtio.Memory, r request) *errRequest {
	if d.cfg.ReadOnly {
		return ioErr("write to a read-only disk")
	}
	if r.out.len != 0 {
		return ioErr("write has %d writable bytes before the status", r.out.len)
	}
	base, rerr := d.byteRange(r.sector, r.in.len)
	if rerr != nil {
		return rerr
	}
	err := r.in.each(mem, func(p []byte, pos uint64) error {
		return d.disk.writeAt(p, base+int64(pos))
	})
	d.markWritten(base, int64(r.in.len))
	if err != nil {
		return ioErr("write: %w", err)
	}
	d.counters.writes.Add(1)
	d.counters.writeBytes.Add(r.in.len)
	return nil
}

func (d *Device) flush(r request) *errRequest {
	if r.in.len != 0 || r.out.len != 0 {
		return ioErr("flush carries data (%d bytes in, %d out)", r.in.len, r.out.len)
	}
	if !d.cfg.ReadOnly { // else nothing was ever written through this descriptor
		if err := d.disk.flush(); err != nil {
			return ioErr("flush: %w", err)
		}
	}
	d.counters.flushes.Add(1)
	return nil
}

// getID returns the serial, padded with NULs to IDLen bytes and cut to
// the room the driver gave.
func (d *Device) getID(mem virtio.Memory, r request) (uint32, *errRequest) {
	if r.in.len != 0 {
		return 0, ioErr("GET_ID has %d bytes of driver data after the header", r.in.len)
	}
	if r.out.len == 0 {
		return 0, ioErr("GET_ID has no room for the ID")
	}
	var id [IDLen]byte
	copy(id[:], d.cfg.ID)
	n := min(r.out.len, IDLen)
	if err := r.out.write(mem, id[:n]); err != nil {
		return 0, ioErr("GET_ID: %w", err)
	}
	return uint32(n), nil
}
