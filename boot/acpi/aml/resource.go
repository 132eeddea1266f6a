package aml

import "fmt"

// Resource is one resource data descriptor (ACPI 6.5 section 6.4) of a
// ResourceTemplate.
type Resource interface {
	appendResource(dst []byte) ([]byte, error)
}

// ResourceTemplate is a buffer of resource descriptors closed by an End Tag
// whose checksum byte makes the bytes of the whole template sum to zero.
type ResourceTemplate []Resource

// Descriptor tags: small items are 0b0nnnnlll (name, length), large items
// 0b1nnnnnnn followed by a 16-bit length.
const (
	tagIRQNoFlags    = 0x04<<3 | 2
	tagIO            = 0x08<<3 | 7
	tagEnd           = 0x0f<<3 | 1
	tagMemory32Fixed = 0x80 | 0x06
	tagExtendedIRQ   = 0x80 | 0x09
)

// Bytes returns the template's descriptors followed by its End Tag.
func (t ResourceTemplate) Bytes() ([]byte, error) {
	var buf []byte
	var err error
	for i, r := range t {
		if r == nil {
			return nil, fmt.Errorf("resource %d: %w", i, errNilObject)
		}
		if buf, err = r.appendResource(buf); err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
	}
	buf = append(buf, tagEnd)
	var sum byte
	for _, c := range buf {
		sum += c
	}
	return append(buf, -sum), nil
}

// AppendAML implements Object: the template is a Buffer.
func (t ResourceTemplate) AppendAML(dst []byte) ([]byte, error) {
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	return Buffer(b).AppendAML(dst)
}

// Memory32Fixed is the 32-bit fixed memory range descriptor.
type Memory32Fixed struct {
	ReadWrite bool
	Base      uint32
	Length    uint32
}

func (m Memory32Fixed) appendResource(dst []byte) ([]byte, error) {
	if uint64(m.Base)+uint64(m.Length) > 1<<32 {
		return nil, fmt.Errorf("%w: Memory32Fixed %#x+%#x passes 4 GiB", ErrBadValue, m.Base, m.Length)
	}
	var info byte
	if m.ReadWrite {
		info = 1
	}
	dst = append(dst, tagMemory32Fixed, 9, 0, info)
	dst = appendLE32(dst, m.Base)
	return appendLE32(dst, m.Length), nil
}

// Interrupt is the extended interrupt descriptor, ASL's Interrupt().
type Interrupt struct {
	Consumer  bool // ResourceConsumer rather than ResourceProducer
	Edge      bool // edge-triggered rather than level-triggered
	ActiveLow bool
	Shared    bool
	Numbers   []uint32
}

func (irq Interrupt) appendResource(dst []byte) ([]byte, error) {
	if len(irq.Numbers) == 0 || len(irq.Numbers) > 255 {
		return nil, fmt.Errorf("%w: Interrupt needs 1 to 255 numbers, has %d", ErrBadValue, len(irq.Numbers))
	}
	var flags byte
	for bit, set := range [...]bool{irq.Consumer, irq.Edge, irq.ActiveLow, irq.Shared} {
		if set {
			flags |= 1 << bit
		}
	}
	length := 2 + 4*len(irq.Numbers)
	dst = append(dst, tagExtendedIRQ, byte(length), byte(length>>8), flags, byte(len(irq.Numbers)))
	for _, n := range irq.Numbers {
		dst = appendLE32(dst, n)
	}
	return dst, nil
}

// IO is the I/O port descriptor, ASL's IO().
type IO struct {
	Decode16  bool // decodes 16 address lines rather than 10
	Min, Max  uint16
	Alignment uint8
	Length    uint8
}

func (io IO) appendResource(dst []byte) ([]byte, error) {
	if io.Min > io.Max {
		return nil, fmt.Errorf("%w: IO minimum %#x above maximum %#x", ErrBadValue, io.Min, io.Max)
	}
	var info byte
	if io.Decode16 {
		info = 1
	}
	return append(dst, tagIO, info, byte(io.Min), byte(io.Min>>8), byte(io.Max), byte(io.Max>>8),
		io.Alignment, io.Length), nil
}

// IRQNoFlags is the two-byte IRQ descriptor: ISA IRQs 0-15, edge-triggered,
// active high, exclusive.
type IRQNoFlags []uint8

func (irqs IRQNoFlags) appendResource(dst []byte) ([]byte, error) {
	var mask uint16
	for _, n := range irqs {
		if n > 15 {
			return nil, fmt.Errorf("%w: IRQNoFlags IRQ %d above 15", ErrBadValue, n)
		}
		mask |= 1 << n
	}
	return append(dst, tagIRQNoFlags, byte(mask), byte(mask>>8)), nil
}

func appendLE32(dst []byte, v uint32) []byte {
	return append(dst, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}
