package aml

import "fmt"

// MaxPkgLength is the largest value a PkgLength can hold: four bits in the
// lead byte plus three following bytes.
const MaxPkgLength = 1<<28 - 1

// AppendPkgLength appends the PkgLength encoding of n, where n already
// counts the PkgLength bytes themselves. One byte holds values up to 63;
// longer forms put the byte count in bits 7-6 of the lead byte, the low
// nibble of n in its bits 3-0, and the rest of n in the following bytes.
func AppendPkgLength(dst []byte, n int) ([]byte, error) {
	if n < 0 || n > MaxPkgLength {
		return nil, fmt.Errorf("%w: PkgLength %d outside 0..%d", ErrTooLong, n, MaxPkgLength)
	}
	if n < 1<<6 {
		return append(dst, byte(n)), nil
	}
	follow := 1
	for n >= 1<<(4+8*follow) {
		follow++
	}
	dst = append(dst, byte(follow)<<6|byte(n&0x0f))
	for i := 0; i < follow; i++ {
		dst = append(dst, byte(n>>(4+8*i)))
	}
	return dst, nil
}

// pkgLengthMax is the largest value a PkgLength of i+1 bytes holds.
var pkgLengthMax = [4]int{1<<6 - 1, 1<<12 - 1, 1<<20 - 1, MaxPkgLength}

// appendWithPkgLength appends a PkgLength covering body (and itself)
// followed by body. The PkgLength counts its own bytes, so its size is the
// smallest that still holds len(body) plus that size.
func appendWithPkgLength(dst, body []byte) ([]byte, error) {
	total := len(body) + 4
	for size, limit := range pkgLengthMax {
		if len(body)+size+1 <= limit {
			total = len(body) + size + 1
			break
		}
	}
	var err error
	if dst, err = AppendPkgLength(dst, total); err != nil {
		return nil, err
	}
	return append(dst, body...), nil
}
