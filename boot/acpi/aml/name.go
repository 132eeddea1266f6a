package aml

import (
	"fmt"
	"strings"
)

// AML name prefixes (ACPI 6.5 section 20.2.2).
const (
	rootChar        = '\\'
	parentPrefix    = '^'
	dualNamePrefix  = 0x2e
	multiNamePrefix = 0x2f
	nullName        = 0x00
)

// AppendNameString appends the NameString encoding of path: an optional
// leading '\' (root) or run of '^' (parent), then NameSegs separated by
// '.'. Segments shorter than four characters are padded with '_', as ASL
// compilers do, so "COM1", "_SB" and "_S5_" are all valid segments.
func AppendNameString(dst []byte, path string) ([]byte, error) {
	rest := path
	switch {
	case strings.HasPrefix(rest, `\`):
		dst = append(dst, rootChar)
		rest = rest[1:]
	default:
		for strings.HasPrefix(rest, "^") {
			dst = append(dst, parentPrefix)
			rest = rest[1:]
		}
	}
	if rest == "" {
		if len(dst) > 0 && dst[len(dst)-1] == rootChar {
			return append(dst, nullName), nil
		}
		return nil, fmt.Errorf("%w: %q has no name segment", ErrBadName, path)
	}
	segs := strings.Split(rest, ".")
	if len(segs) > 255 {
		return nil, fmt.Errorf("%w: %q has more than 255 segments", ErrBadName, path)
	}
	switch len(segs) {
	case 1:
	case 2:
		dst = append(dst, dualNamePrefix)
	default:
		dst = append(dst, multiNamePrefix, byte(len(segs)))
	}
	for _, s := range segs {
		seg, err := nameSeg(s)
		if err != nil {
			return nil, fmt.Errorf("%w in %q", err, path)
		}
		dst = append(dst, seg[:]...)
	}
	return dst, nil
}

// nameSeg pads s to four characters with '_' and checks the NameSeg
// grammar: a lead character A-Z or '_', then A-Z, 0-9 or '_'.
func nameSeg(s string) ([4]byte, error) {
	var seg [4]byte
	if len(s) == 0 || len(s) > 4 {
		return seg, fmt.Errorf("%w: segment %q must have 1 to 4 characters", ErrBadName, s)
	}
	for i := range seg {
		c := byte('_')
		if i < len(s) {
			c = s[i]
		}
		lead := c == '_' || c >= 'A' && c <= 'Z'
		if !lead && (i == 0 || c < '0' || c > '9') {
			return seg, fmt.Errorf("%w: segment %q has character %q at %d", ErrBadName, s, c, i)
		}
		seg[i] = c
	}
	return seg, nil
}
