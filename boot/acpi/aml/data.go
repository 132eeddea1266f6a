package aml

import "fmt"

// Data object opcodes (ACPI 6.5 section 20.2.3).
const (
	zeroOp        = 0x00
	oneOp         = 0x01
	onesOp        = 0xff
	bytePrefix    = 0x0a
	wordPrefix    = 0x0b
	dwordPrefix   = 0x0c
	stringPrefix  = 0x0d
	qwordPrefix   = 0x0e
	bufferOp      = 0x11
	packageOp     = 0x12
	nameOp        = 0x08
	scopeOp       = 0x10
	extOpPrefix   = 0x5b
	deviceOpExtOp = 0x82
)

// Integer is an AML integer, encoded in the shortest form that holds it:
// ZeroOp, OneOp, then the Byte, Word, DWord or QWord prefixes. All ones in
// 64 bits is written with the QWord prefix, not OnesOp, because OnesOp is
// only 32 bits wide in a revision 1 definition block.
type Integer uint64

// AppendAML implements Object.
func (v Integer) AppendAML(dst []byte) ([]byte, error) {
	switch {
	case v == 0:
		return append(dst, zeroOp), nil
	case v == 1:
		return append(dst, oneOp), nil
	case v <= 0xff:
		return append(dst, bytePrefix, byte(v)), nil
	case v <= 0xffff:
		return append(dst, wordPrefix, byte(v), byte(v>>8)), nil
	case v <= 0xffffffff:
		return append(dst, dwordPrefix, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)), nil
	}
	dst = append(dst, qwordPrefix)
	for i := 0; i < 8; i++ {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst, nil
}

// Ones is the OnesOp constant: all bits set in the table's integer width.
type Ones struct{}

// AppendAML implements Object.
func (Ones) AppendAML(dst []byte) ([]byte, error) { return append(dst, onesOp), nil }

// String is an AML string: ASCII characters 0x01-0x7f, NUL-terminated.
type String string

// AppendAML implements Object.
func (s String) AppendAML(dst []byte) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] > 0x7f {
			return nil, fmt.Errorf("%w: string %q has byte %#x at %d", ErrBadValue, string(s), s[i], i)
		}
	}
	dst = append(dst, stringPrefix)
	dst = append(dst, s...)
	return append(dst, 0), nil
}

// EISAID is a seven-character PNP id such as "PNP0501", encoded as the
// 32-bit compressed id that ASL's EisaId() produces.
type EISAID string

// AppendAML implements Object.
func (id EISAID) AppendAML(dst []byte) ([]byte, error) {
	v, err := CompressEISAID(string(id))
	if err != nil {
		return nil, err
	}
	return append(dst, dwordPrefix, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)), nil
}

// CompressEISAID packs a PNP id of three upper-case letters and four hex
// digits into 32 bits: the letters as 5-bit values ('A' is 1) in a
// big-endian 16-bit word, followed by the big-endian 16-bit product number,
// read as a little-endian DWord.
func CompressEISAID(id string) (uint32, error) {
	if len(id) != 7 {
		return 0, fmt.Errorf("%w: EISA id %q must have 7 characters", ErrBadValue, id)
	}
	var vendor uint16
	for i := 0; i < 3; i++ {
		c := id[i]
		if c < 'A' || c > 'Z' {
			return 0, fmt.Errorf("%w: EISA id %q: %q is not an upper-case letter", ErrBadValue, id, c)
		}
		vendor = vendor<<5 | uint16(c-'@')
	}
	var product uint16
	for i := 3; i < 7; i++ {
		d, ok := hexDigit(id[i])
		if !ok {
			return 0, fmt.Errorf("%w: EISA id %q: %q is not an upper-case hex digit", ErrBadValue, id, id[i])
		}
		product = product<<4 | uint16(d)
	}
	b := [4]byte{byte(vendor >> 8), byte(vendor), byte(product >> 8), byte(product)}
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
