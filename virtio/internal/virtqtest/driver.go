package virtqtest

import (
	"encoding/binary"
	"fmt"
)

// Descriptor flags and ring flags, from the virtio 1.2 specification
// (2.7.5, 2.7.6, 2.7.8).
const (
	DescFNext           = 1
	DescFWrite          = 2
	DescFIndirect       = 4
	AvailFNoInterrupt   = 1
	UsedFNoNotify       = 1
	DescBytes           = 16 // sizeof(struct virtq_desc)
	UsedElemBytes       = 8  // sizeof(struct virtq_used_elem)
	FeatureIndirectDesc = 1 << 28
	FeatureEventIdx     = 1 << 29
	FeatureVersion1     = 1 << 32
	StatusAcknowledge   = 1
	StatusDriver        = 2
	StatusDriverOK      = 4
	StatusFeaturesOK    = 8
	StatusNeedsReset    = 0x40
	StatusFailed        = 0x80
)

// Desc is one descriptor as the driver writes it.
type Desc struct {
	Addr  uint64
	Len   uint32
	Flags uint16
	Next  uint16
}

// Seg is one buffer of a chain built by Driver.Chain.
type Seg struct {
	Addr  uint64
	Len   uint32
	Write bool // device-writable
}

// Driver plays the driver side of one split virtqueue in a Memory. Its
// offsets come from the specification's struct layouts:
//
//	struct virtq_desc  { le64 addr; le32 len; le16 flags; le16 next; };
//	struct virtq_avail { le16 flags; le16 idx; le16 ring[N]; le16 used_event; };
//	struct virtq_used  { le16 flags; le16 idx; struct { le32 id; le32 len; } ring[N]; le16 avail_event; };
type Driver struct {
	Mem               *Memory
	Size              uint16
	Desc, Avail, Used uint64
	AvailIdx          uint16 // next index the driver publishes
}

// NewDriver lays out a queue of size entries at desc, avail and used.
func NewDriver(mem *Memory, size uint16, desc, avail, used uint64) *Driver {
	return &Driver{Mem: mem, Size: size, Desc: desc, Avail: avail, Used: used}
}

// Layout places a queue of size entries contiguously at base: the
// descriptor table, then the available ring, then the used ring aligned to
// 4 bytes, each packed as tightly as its alignment allows.
func Layout(mem *Memory, size uint16, base uint64) *Driver {
	desc := base
	avail := desc + 16*uint64(size)
	used := (avail + 6 + 2*uint64(size) + 3) &^ 3
	return NewDriver(mem, size, desc, avail, used)
}

func (d *Driver) put16(addr uint64, v uint16) {
	b := d.slice(addr, 2)
	binary.LittleEndian.PutUint16(b, v)
}

func (d *Driver) get16(addr uint64) uint16 { return binary.LittleEndian.Uint16(d.slice(addr, 2)) }

func (d *Driver) slice(addr, n uint64) []byte {
	b, err := d.Mem.Slice(addr, n)
	if err != nil {
		panic(fmt.Sprintf("test driver: %v", err)) // a bug in the test itself
	}
	return b
}

// WriteDesc writes entry i of the descriptor table at table.
func (d *Driver) WriteDesc(table uint64, i uint16, desc Desc) {
	b := d.slice(table+16*uint64(i), 16)
	binary.LittleEndian.PutUint64(b[0:], desc.Addr)
	binary.LittleEndian.PutUint32(b[8:], desc.Len)
	binary.LittleEndian.PutUint16(b[12:], desc.Flags)
	binary.LittleEndian.PutUint16(b[14:], desc.Next)
}

// Chain writes segs as descriptors first, first+1, ... of the queue's
// table (wrapping modulo the size) linked with NEXT, and returns first.
func (d *Driver) Chain(first uint16, segs ...Seg) uint16 {
	return d.ChainIn(d.Desc, d.Size, first, segs...)
}

// ChainIn is Chain for any table of n entries, such as an indirect one.
func (d *Driver) ChainIn(table uint64, n, first uint16, segs ...Seg) uint16 {
	for k, s := range segs {
		i := (first + uint16(k)) % n
		desc := Desc{Addr: s.Addr, Len: s.Len}
		if s.Write {
			desc.Flags |= DescFWrite
		}
		if k+1 < len(segs) {
			desc.Flags |= DescFNext
			desc.Next = (i + 1) % n
		}
		d.WriteDesc(table, i, desc)
	}
	return first
}

// Publish puts head in the next available ring slot and then advances the
// available index, as a driver does.
func (d *Driver) Publish(head uint16) {
	d.put16(d.Avail+4+2*uint64(d.AvailIdx%d.Size), head)
	d.AvailIdx++
	d.put16(d.Avail+2, d.AvailIdx)
}

// SetAvailIdx stores idx as the available index without touching the ring.
func (d *Driver) SetAvailIdx(idx uint16) {
	d.AvailIdx = idx
	d.put16(d.Avail+2, idx)
}

// SetAvailFlags stores the available ring's flags.
func (d *Driver) SetAvailFlags(v uint16) { d.put16(d.Avail, v) }

// SetUsedEvent stores used_event, after the available ring entries.
func (d *Driver) SetUsedEvent(v uint16) { d.put16(d.Avail+4+2*uint64(d.Size), v) }

// UsedFlags reads the used ring's flags.
func (d *Driver) UsedFlags() uint16 { return d.get16(d.Used) }

// UsedIdx reads the used index.
func (d *Driver) UsedIdx() uint16 { return d.get16(d.Used + 2) }

// UsedElem reads used ring entry slot (taken modulo the size).
func (d *Driver) UsedElem(slot uint16) (id, length uint32) {
	b := d.slice(d.Used+4+8*uint64(slot%d.Size), 8)
	return binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint32(b[4:])
}

// AvailEvent reads avail_event, after the used ring entries.
func (d *Driver) AvailEvent() uint16 { return d.get16(d.Used + 4 + 8*uint64(d.Size)) }
