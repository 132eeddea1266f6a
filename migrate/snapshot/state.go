package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Magic opens every state file.
const Magic = "TERNSNAP"

// Version is the state file format version this package writes, and the
// only one it reads.
const Version = 1

// Limits of the state file format; a reader refuses anything beyond them.
const (
	MaxSections = 4096
	MaxNameLen  = 255
)

const (
	headerSize   = 8 + 4 + 4 + 4 // magic, version, flags, section count
	checksumSize = sha256.Size
	// The smallest a section can be: name length, a one-byte name, data
	// length. Used to bound the section slice by what the file can hold.
	minSectionSize = 2 + 1 + 8
)

// Section is one named part of a state file. Data is opaque here; tern
// puts JSON in it (see State).
type Section struct {
	Name string
	Data []byte
}

func stateErr(label string, kind error, format string, args ...any) error {
	return &detailError{kind: kind, msg: label + ": " + fmt.Sprintf(format, args...)}
}

// checkName enforces the name rule: 1 to 255 bytes of printable ASCII
// without spaces, so that names print unambiguously in messages and tools.
func checkName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: section name of %d bytes (1 to %d allowed)", ErrMalformed, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < '!' || c > '~' {
			return fmt.Errorf("%w: section name %q has byte %#02x (only printable ASCII without spaces allowed)", ErrMalformed, name, c)
		}
	}
	return nil
}

// checkSections applies every rule a reader applies, so that a writer
// never produces a file its own reader refuses.
func checkSections(sections []Section) error {
	if len(sections) > MaxSections {
		return fmt.Errorf("%w: %d sections, at most %d", ErrMalformed, len(sections), MaxSections)
	}
	seen := make(map[string]bool, len(sections))
	for _, s := range sections {
		if err := checkName(s.Name); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: section %q given twice", ErrMalformed, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// EncodedSize is the number of bytes WriteState produces for sections.
func EncodedSize(sections []Section) uint64 {
	n := uint64(headerSize + checksumSize)
	for _, s := range sections {
		n += 2 + uint64(len(s.Name)) + 8 + uint64(len(s.Data))
	}
	return n
}

// WriteState writes a state file holding sections, in the given order.
// It checks the names (and that there are no duplicates) before writing
// anything.
func WriteState(w io.Writer, sections []Section) error {
	if err := checkSections(sections); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	sum := sha256.New()
	bw := bufio.NewWriterSize(w, 64<<10)
	hw := io.MultiWriter(bw, sum)
	var hdr []byte
	hdr = append(hdr, Magic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, Version)
	hdr = binary.LittleEndian.AppendUint32(hdr, 0) // flags: none defined
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(sections)))
	if _, err := hw.Write(hdr); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	for _, s := range sections {
		hdr = binary.LittleEndian.AppendUint16(hdr[:0], uint16(len(s.Name)))
		hdr = append(hdr, s.Name...)
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(s.Data)))
		if _, err := hw.Write(hdr); err != nil {
			return fmt.Errorf("vmstate: section %q: %w", s.Name, err)
		}
		if _, err := hw.Write(s.Data); err != nil {
			return fmt.Errorf("vmstate: section %q: %w", s.Name, err)
		}
	}
	if _, err := bw.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	return nil
}

// ReadState reads a state file of at most maxSize bytes from r and checks
// all of it (magic, version, flags, section count, every name and length,
// the checksum, nothing after the trailer) before returning its sections.
// Memory use is bounded by maxSize, whatever the file declares.
func ReadState(r io.Reader, maxSize int64) ([]Section, error) {
	return readState(r, maxSize, 0, "vmstate")
}

// readState reads and decodes at most maxSize bytes; sizeHint, when the
// caller knows the size (a regular file's), sizes the buffer once.
func readState(r io.Reader, maxSize, sizeHint int64, label string) ([]Section, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("%s: size limit %d is not positive", label, maxSize)
	}
	limit := maxSize
	if limit < math.MaxInt64 {
		limit++ // one byte more tells "exactly maxSize" from "larger"
	}
	// The buffer grows with what actually arrives, so a short file costs
	// little whatever lengths it declares. Sized from the hint, a file
	// costs its size once instead of the sum of every doubling (up to
	// three times its size).
	buf := bytes.NewBuffer(make([]byte, 0, min(max(sizeHint, 0), maxSize)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, limit)); err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	data := buf.Bytes()
	if int64(len(data)) > maxSize {
		return nil, stateErr(label, ErrTooLarge, "too large: more than %d bytes", maxSize)
	}
	return decodeState(data, label)
}

// decodeState checks data in file order: header, then each section's
// lengths against the bytes really left, then the checksum, then that the
// trailer ends the file.
func decodeState(data []byte, label string) ([]Section, error) {
	if len(data) < len(Magic) && bytes.HasPrefix([]byte(Magic), data) {
		return nil, stateErr(label, ErrTruncated, "truncated: %d bytes, the header alone needs %d", len(data), headerSize)
	}
	if len(data) < len(Magic) || string(data[:len(Magic)]) != Magic {
		return nil, stateErr(label, ErrBadMagic, "not a tern snapshot (magic %q)", data[:min(len(data), len(Magic))])
	}
	if len(data) < headerSize {
		return nil, stateErr(label, ErrTruncated, "truncated: %d bytes, the header alone needs %d", len(data), headerSize)
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != Version {
		return nil, stateErr(label, ErrVersion, "format version %d, this tern reads version %d", v, Version)
	}
	if f := binary.LittleEndian.Uint32(data[12:]); f != 0 {
		return nil, stateErr(label, ErrMalformed, "malformed: unknown flag bits %#x", f)
	}
	count := binary.LittleEndian.Uint32(data[16:])
	if count > MaxSections {
		return nil, stateErr(label, ErrMalformed, "malformed: %d sections, at most %d", count, MaxSections)
	}
	rest := data[headerSize:]
	sections := make([]Section, 0, min(int(count), len(rest)/minSectionSize))
	seen := make(map[string]bool, cap(sections))
	for i := 1; i <= int(count); i++ {
		if len(rest) < 2 {
			return nil, stateErr(label, ErrTruncated, "truncated: section %d of %d has no name length (%d bytes left)", i, count, len(rest))
		}
		n := int(binary.LittleEndian.Uint16(rest))
		rest = rest[2:]
		if n == 0 || n > MaxNameLen {
			return nil, stateErr(label, ErrMalformed, "malformed: section %d of %d has a name of %d bytes (1 to %d allowed)", i, count, n, MaxNameLen)
		}
		if len(rest) < n {
			return nil, stateErr(label, ErrTruncated, "truncated: section %d of %d: its name needs %d bytes, %d left", i, count, n, len(rest))
		}
		name := string(rest[:n])
		rest = rest[n:]
		if err := checkName(name); err != nil {
			return nil, &detailError{kind: ErrMalformed, msg: fmt.Sprintf("%s: section %d of %d: %v", label, i, count, err)}
		}
		if seen[name] {
			return nil, stateErr(label, ErrMalformed, "malformed: section %q appears twice", name)
		}
		seen[name] = true
		if len(rest) < 8 {
			return nil, stateErr(label, ErrTruncated, "truncated: section %q has no data length (%d bytes left)", name, len(rest))
		}
		size := binary.LittleEndian.Uint64(rest)
		rest = rest[8:]
		if size > uint64(len(rest)) {
			return nil, stateErr(label, ErrTruncated, "truncated: section %q needs %d bytes, %d left", name, size, len(rest))
		}
		// A copy, so that the caller's sections do not pin the whole
		// file buffer.
		sections = append(sections, Section{Name: name, Data: bytes.Clone(rest[:size:size])})
		rest = rest[size:]
	}
	if len(rest) < checksumSize {
		return nil, stateErr(label, ErrTruncated, "truncated: the checksum trailer needs %d bytes, %d left", checksumSize, len(rest))
	}
	end := len(data) - len(rest)
	if sha256.Sum256(data[:end]) != [checksumSize]byte(rest[:checksumSize]) {
		return nil, stateErr(label, ErrChecksum, "checksum mismatch: the file is corrupt")
	}
	if extra := len(rest) - checksumSize; extra != 0 {
		return nil, stateErr(label, ErrMalformed, "malformed: %d bytes after the checksum trailer", extra)
	}
	return sections, nil
}
