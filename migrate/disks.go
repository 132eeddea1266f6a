package migrate

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/ternvm/tern/migrate/snapshot"
)

// diskUnit is the granularity at which the sender looks for zeroes in
// what it read from a disk: a unit of only zeroes goes as a flag. It is
// the write log's chunk in vmm, so a freshly discarded chunk costs no
// data on the wire.
const diskUnit = 64 << 10

// maxZeroExtent bounds one zero extent, well inside the u32 length.
const maxZeroExtent = 1 << 31

// diskBatch builds one disk-extents message.
type diskBatch struct {
	table     []byte   // the payload's header and extent entries
	data      [][]byte // the data extents' bytes, in order
	n         int      // extents
	bufUsed   int      // bytes of the read buffer the data holds on to
	dataBytes uint64
	// last extent, to merge a contiguous one into it
	lastDisk        int
	lastOff, lastN  uint64
	lastZero, valid bool
}

func (b *diskBatch) reset() {
	b.table = append(b.table[:0], make([]byte, diskHeaderSize)...)
	clear(b.data)
	b.data = b.data[:0]
	b.n, b.bufUsed, b.dataBytes, b.valid = 0, 0, 0, false
}

// add appends an extent, merging it into the previous one where it
// continues it (same disk, kind and, for data, buffer).
func (b *diskBatch) add(disk int, off, n uint64, data []byte) {
	zero := data == nil
	if b.valid && b.lastDisk == disk && b.lastZero == zero && b.lastOff+b.lastN == off {
		merge := zero && b.lastN+n <= maxZeroExtent
		if !zero {
			k := len(b.data) - 1
			merge = contiguous(b.data[k], data)
			if merge {
				b.data[k] = b.data[k][:len(b.data[k])+len(data)]
			}
		}
		if merge {
			b.lastN += n
			binary.LittleEndian.PutUint32(b.table[len(b.table)-extentEntrySize+16:], uint32(b.lastN))
			if !zero {
				b.dataBytes += n
			}
			return
		}
	}
	var flags uint32
	if zero {
		flags = extentZero
	} else {
		b.data = append(b.data, data)
		b.dataBytes += n
	}
	b.table = binary.LittleEndian.AppendUint32(b.table, uint32(disk))
	b.table = binary.LittleEndian.AppendUint32(b.table, flags)
	b.table = binary.LittleEndian.AppendUint64(b.table, off)
	b.table = binary.LittleEndian.AppendUint32(b.table, uint32(n))
	b.table = binary.LittleEndian.AppendUint32(b.table, 0)
	b.n++
	b.lastDisk, b.lastOff, b.lastN, b.lastZero, b.valid = disk, off, n, zero, true
}

func (b *diskBatch) parts() [][]byte {
	binary.LittleEndian.PutUint32(b.table[0:], uint32(b.n))
	binary.LittleEndian.PutUint32(b.table[4:], 0)
	return append([][]byte{b.table}, b.data...)
}

// mergeExtents sorts each disk's extents and joins those that overlap or
// touch, so that a range dirty in two records goes once.
func mergeExtents(a, b [][]Extent) [][]Extent {
	out := make([][]Extent, max(len(a), len(b)))
	for i := range out {
		var all []Extent
		if i < len(a) {
			all = append(all, a[i]...)
		}
		if i < len(b) {
			all = append(all, b[i]...)
		}
		slices.SortFunc(all, func(x, y Extent) int {
			switch {
			case x.Off < y.Off:
				return -1
			case x.Off > y.Off:
				return 1
			}
			return 0
		})
		for _, e := range all {
			if k := len(out[i]) - 1; k >= 0 && e.Off <= out[i][k].Off+out[i][k].Len {
				out[i][k].Len = max(out[i][k].Len, e.Off+e.Len-out[i][k].Off)
				continue
			}
			out[i] = append(out[i], e)
		}
	}
	return out
}

// extentBytes is how many bytes the extents cover.
func extentBytes(ext [][]Extent) uint64 {
	var n uint64
	for _, d := range ext {
		for _, e := range d {
			n += e.Len
		}
	}
	return n
}

// checkExtents checks that the source's extents lie inside its disks.
func (s *sender) checkExtents(what string, ext [][]Extent) error {
	if len(ext) != len(s.diskInfo) {
		return fmt.Errorf("%s: extents for %d disks, the source has %d", what, len(ext), len(s.diskInfo))
	}
	for i, d := range ext {
		size := s.diskInfo[i].Size
		for _, e := range d {
			if e.Len == 0 || e.Off > size || e.Len > size-e.Off {
				return fmt.Errorf("%s: disk %d: range [%d, +%d) outside its %d bytes", what, i, e.Off, e.Len, size)
			}
		}
	}
	return nil
}

// sendDisks sends the extents' current contents, disk by disk. Each
// piece is read into the read buffer (the guest may write the disk
// meanwhile; the checksum covers the bytes read, and a range written
// again is in the next record), and units of only zeroes go as zero
// extents.
func (s *sender) sendDisks(ext [][]Extent, stable bool) error {
	if s.diskBuf == nil {
		s.diskBuf = make([]byte, s.limit)
	}
	s.dbatch.reset()
	for i, d := range ext {
		for _, e := range d {
			for off, end := e.Off, e.Off+e.Len; off < end; {
				room := len(s.diskBuf) - s.dbatch.bufUsed
				n := min(end-off, uint64(room))
				// A nearly full buffer goes out before the next read, and
				// the table must have room for every unit of the piece as
				// an extent of its own.
				full := s.dbatch.bufUsed > 0 && n < end-off && room < min(diskUnit, len(s.diskBuf))
				if full || s.dbatch.n+int(n/diskUnit)+2 > maxExtents {
					if err := s.flushDisks(stable); err != nil {
						return err
					}
					continue
				}
				// A disk of zeroes may take a while to read and send
				// nothing: a cancel or an abort is seen here too.
				if err := s.check(stable); err != nil {
					return err
				}
				buf := s.diskBuf[s.dbatch.bufUsed : s.dbatch.bufUsed+int(n)]
				if err := s.diskSrc.ReadDisk(i, buf, int64(off)); err != nil {
					return fmt.Errorf("reading disk %d (%s) at %d: %w", i, s.diskInfo[i].Name, off, err)
				}
				used := s.dbatch.bufUsed
				for u := 0; u < len(buf); u += diskUnit {
					unit := buf[u:min(u+diskUnit, len(buf))]
					if isZero(unit) {
						s.dbatch.add(i, off+uint64(u), uint64(len(unit)), nil)
						continue
					}
					s.dbatch.add(i, off+uint64(u), uint64(len(unit)), unit)
					used = s.dbatch.bufUsed + u + len(unit)
				}
				// A zero tail holds on to nothing: the next read reuses it.
				s.dbatch.bufUsed = used
				off += n
			}
		}
	}
	return s.flushDisks(stable)
}

// isZero reports whether b holds only zeroes: snapshot.IsZeroPage's fast loop over
// the whole 64-byte blocks, bytes for the rest.
func isZero(b []byte) bool {
	n := len(b) &^ 63
	if !snapshot.IsZeroPage(b[:n]) {
		return false
	}
	for _, c := range b[n:] {
		if c != 0 {
			return false
		}
	}
	return true
}

// flushDisks sends the batch as one disk-extents message, if it holds
// any extent.
func (s *sender) flushDisks(stable bool) error {
	if s.dbatch.n == 0 {
		s.dbatch.reset()
		return nil
	}
	if err := s.check(stable); err != nil {
		return err
	}
	if err := s.pace.wait(s.ctx, int(s.dbatch.dataBytes)+len(s.dbatch.table)+headerSize+trailerSize); err != nil {
		return err
	}
	s.dl.write(writeTimeout)
	if _, err := s.mw.write(msgDiskExtents, s.dbatch.parts()...); err != nil {
		return err
	}
	s.st.DiskBytesSent += s.dbatch.dataBytes
	s.st.BytesTransferred = s.mw.bytes
	s.dbatch.reset()
	return nil
}

// checkDisks checks the disks a hello announces.
func checkDisks(h header, disks []DiskInfo) error {
	if len(disks) > maxDisks {
		return protoErr("%s: %d disks, at most %d", h.label(), len(disks), maxDisks)
	}
	for i, d := range disks {
		if d.Size > math.MaxInt64 {
			return protoErr("%s: disk %d of %d bytes", h.label(), i, d.Size)
		}
	}
	return nil
}

// diskExtents lands one disk-extents message in the destination's
// copies: the extent table is read and checked whole first, then each
// extent is applied in order, data read a piece at a time (the buffer
// does not grow with what a header claims). The checksum is checked
// last; a mismatch fails the migration, whose copies are discarded.
func (r *receiver) diskExtents(h header) error {
	pr := payloadReader{r: r.mr.r, h: h, left: h.length}
	if h.length < diskHeaderSize {
		return protoErr("%s: %d bytes, shorter than the %d-byte extent count", h.label(), h.length, diskHeaderSize)
	}
	var dh [diskHeaderSize]byte
	if err := pr.readFull(dh[:]); err != nil {
		return err
	}
	count := binary.LittleEndian.Uint32(dh[:])
	if v := binary.LittleEndian.Uint32(dh[4:]); v != 0 {
		return protoErr("%s: reserved field %#x", h.label(), v)
	}
	if count > maxExtents {
		return protoErr("%s: %d extents, at most %d", h.label(), count, maxExtents)
	}
	if need := uint64(count) * extentEntrySize; need > uint64(pr.left) {
		return protoErr("%s: %d extents need %d bytes of table, %d left in the payload", h.label(), count, need, pr.left)
	}
	if cap(r.table) < maxExtents*extentEntrySize {
		r.table = make([]byte, maxExtents*extentEntrySize)
	}
	table := r.table[:count*extentEntrySize]
	if err := pr.readFull(table); err != nil {
		return err
	}
	var data uint64
	for i := range count {
		e := table[i*extentEntrySize:]
		disk, flags := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
		off, n := binary.LittleEndian.Uint64(e[8:]), uint64(binary.LittleEndian.Uint32(e[16:]))
		if v := binary.LittleEndian.Uint32(e[20:]); v != 0 {
			return protoErr("%s: extent %d has reserved field %#x", h.label(), i, v)
		}
		if disk >= uint32(len(r.disks)) {
			return protoErr("%s: extent %d names disk %d of %d", h.label(), i, disk, len(r.disks))
		}
		if flags&^extentZero != 0 {
			return protoErr("%s: extent %d has unknown flags %#x", h.label(), i, flags)
		}
		if n == 0 {
			return protoErr("%s: extent %d is empty", h.label(), i)
		}
		if size := r.disks[disk].Size; off > size || n > size-off {
			return protoErr("%s: extent %d (bytes %d+%d) goes past disk %d's %d bytes", h.label(), i, off, n, disk, size)
		}
		if flags&extentZero == 0 {
			data += n
			if data > maxDiskData {
				return protoErr("%s: extents declare more than %d bytes of data", h.label(), maxDiskData)
			}
		}
	}
	if want := uint64(diskHeaderSize) + uint64(count)*extentEntrySize + data; want != uint64(h.length) {
		return protoErr("%s: %d extents with %d bytes of data make %d bytes, the header says %d", h.label(), count, data, want, h.length)
	}
	if r.diskBuf == nil {
		r.diskBuf = make([]byte, diskPiece)
	}
	for i := range count {
		e := table[i*extentEntrySize:]
		disk, zero := int(binary.LittleEndian.Uint32(e)), binary.LittleEndian.Uint32(e[4:])&extentZero != 0
		off, n := int64(binary.LittleEndian.Uint64(e[8:])), int64(binary.LittleEndian.Uint32(e[16:]))
		if zero {
			if err := r.diskDst.ZeroDisk(disk, off, n); err != nil {
				return fmt.Errorf("%s: zeroing disk %d at %d: %w", h.label(), disk, off, err)
			}
			continue
		}
		for n > 0 {
			p := r.diskBuf[:min(n, diskPiece)]
			if err := pr.readFull(p); err != nil {
				return err
			}
			if err := r.diskDst.WriteDisk(disk, p, off); err != nil {
				return fmt.Errorf("%s: writing disk %d at %d: %w", h.label(), disk, off, err)
			}
			off += int64(len(p))
			n -= int64(len(p))
		}
	}
	return r.mr.trailer(h, pr.sum)
}

// diskPiece is how much of a data extent the receiver reads before
// writing it out.
const diskPiece = 1 << 20
