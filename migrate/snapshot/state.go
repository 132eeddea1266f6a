package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Magic opens every state file.
const Magic = "TERNSNAP"

// Version is the state file format this package writes and reads.
const Version = 1

// Limits a reader enforces.
const (
	MaxSections    = 4096
	MaxNameLen     = 255
	MaxStateSize   = 64 << 20 // ReadStateFile's bound
	headerSize     = 8 + 4 + 4 + 4
	checksumSize   = sha256.Size
	sectionHdrSize = 2 + 8 // name length, data length (plus the name)
)

// Errors a reader returns, wrapped with the detail.
var (
	ErrBadMagic  = errors.New("not a tern snapshot")
	ErrVersion   = errors.New("unsupported snapshot format version")
	ErrTruncated = errors.New("truncated")
	ErrChecksum  = errors.New("checksum mismatch: the file is corrupt")
	ErrMalformed = errors.New("malformed")
	ErrNoSection = errors.New("missing section")
	ErrTooLarge  = errors.New("too large")
)

// Section is one named part of a state file.
type Section struct {
	Name string
	Data []byte
}

func checkName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: section name of %d bytes (1 to %d)", ErrMalformed, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x21 || name[i] > 0x7e {
			return fmt.Errorf("%w: section name %q is not printable ASCII without spaces", ErrMalformed, name)
		}
	}
	return nil
}

// encode produces the whole file.
func encode(sections []Section) ([]byte, error) {
	if len(sections) > MaxSections {
		return nil, fmt.Errorf("%w: %d sections, at most %d", ErrMalformed, len(sections), MaxSections)
	}
	seen := map[string]bool{}
	var b bytes.Buffer
	b.WriteString(Magic)
	var u4 [4]byte
	var u8 [8]byte
	binary.LittleEndian.PutUint32(u4[:], Version)
	b.Write(u4[:])
	binary.LittleEndian.PutUint32(u4[:], 0) // flags
	b.Write(u4[:])
	binary.LittleEndian.PutUint32(u4[:], uint32(len(sections)))
	b.Write(u4[:])
	for _, s := range sections {
		if err := checkName(s.Name); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: section %q given twice", ErrMalformed, s.Name)
		}
		seen[s.Name] = true
		var u2 [2]byte
		binary.LittleEndian.PutUint16(u2[:], uint16(len(s.Name)))
		b.Write(u2[:])
		b.WriteString(s.Name)
		binary.LittleEndian.PutUint64(u8[:], uint64(len(s.Data)))
		b.Write(u8[:])
		b.Write(s.Data)
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), nil
}

// WriteState writes a state file holding sections, in order.
func WriteState(w io.Writer, sections []Section) error {
	data, err := encode(sections)
	if err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	return nil
}

// ReadState reads a whole state file of at most maxSize bytes and checks
// it completely (magic, version, flags, every length, names, the
// checksum, nothing after the trailer) before returning its sections.
func ReadState(r io.Reader, maxSize int64) ([]Section, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("vmstate: %w", err)
	}
	if int64(len(data)) > maxSize {
		return nil, fmt.Errorf("vmstate: %w: more than %d bytes", ErrTooLarge, maxSize)
	}
	return decode(data)
}

func decode(data []byte) ([]Section, error) {
	if len(data) < len(Magic) {
		if bytes.HasPrefix([]byte(Magic), data) {
			return nil, fmt.Errorf("vmstate: %w: %d bytes, shorter than the header", ErrTruncated, len(data))
		}
		return nil, fmt.Errorf("vmstate: %w (magic %q)", ErrBadMagic, data)
	}
	if string(data[:8]) != Magic {
		return nil, fmt.Errorf("vmstate: %w (magic %q, want %q)", ErrBadMagic, data[:8], Magic)
	}
	if len(data) < headerSize+checksumSize {
		return nil, fmt.Errorf("vmstate: %w: %d bytes, a state file has at least %d", ErrTruncated, len(data), headerSize+checksumSize)
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != Version {
		return nil, fmt.Errorf("vmstate: %w: format version %d, this tern reads version %d", ErrVersion, v, Version)
	}
	if f := binary.LittleEndian.Uint32(data[12:]); f != 0 {
		return nil, fmt.Errorf("vmstate: %w: unknown flags %#x", ErrMalformed, f)
	}
	count := binary.LittleEndian.Uint32(data[16:])
	if count > MaxSections {
		return nil, fmt.Errorf("vmstate: %w: %d sections, at most %d", ErrMalformed, count, MaxSections)
	}
	body := data[:len(data)-checksumSize]
	rest := body[headerSize:]
	sections := make([]Section, 0, min(int(count), len(rest)/sectionHdrSize+1))
	seen := map[string]bool{}
	for i := uint32(0); i < count; i++ {
		if len(rest) < 2 {
			return nil, fmt.Errorf("vmstate: %w: section %d of %d has no header", ErrTruncated, i+1, count)
		}
		n := int(binary.LittleEndian.Uint16(rest))
		rest = rest[2:]
		if len(rest) < n+8 {
			return nil, fmt.Errorf("vmstate: %w: section %d of %d: name and length need %d bytes, %d left", ErrTruncated, i+1, count, n+8, len(rest))
		}
		name := string(rest[:n])
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("vmstate: section %d: %w", i+1, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("vmstate: %w: section %q appears twice", ErrMalformed, name)
		}
		seen[name] = true
		size := binary.LittleEndian.Uint64(rest[n:])
		rest = rest[n+8:]
		if size > uint64(len(rest)) {
			return nil, fmt.Errorf("vmstate: %w: section %q needs %d bytes, %d left", ErrTruncated, name, size, len(rest))
		}
		sections = append(sections, Section{Name: name, Data: bytes.Clone(rest[:size])})
		rest = rest[size:]
	}
	if len(rest) != 0 {
		// Bytes between the last section and the trailer: either
		// garbage appended to a good file or a cut one; the checksum
		// decides which message is truer.
		if sha256.Sum256(body) != [32]byte(data[len(data)-checksumSize:]) {
			return nil, fmt.Errorf("vmstate: %w", ErrChecksum)
		}
		return nil, fmt.Errorf("vmstate: %w: %d bytes after the last section", ErrMalformed, len(rest))
	}
	if sha256.Sum256(body) != [32]byte(data[len(data)-checksumSize:]) {
		return nil, fmt.Errorf("vmstate: %w", ErrChecksum)
	}
	return sections, nil
}

// WriteStateFile writes the state file at path atomically: a temporary
// file in the same directory, synced, then renamed over path.
func WriteStateFile(path string, sections []Section) error {
	data, err := encode(sections)
	if err != nil {
		return fmt.Errorf("vmstate %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up a failure
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("vmstate %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("vmstate %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("vmstate %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	return nil
}

// ReadStateFile reads and checks the state file at path.
func ReadStateFile(path string) ([]Section, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot state file: %w", err)
	}
	defer f.Close()
	s, err := ReadState(f, MaxStateSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// State is an ordered set of sections with JSON payloads.
type State struct {
	sections []Section
	index    map[string]int
}

// NewState wraps sections (which must have distinct names).
func NewState(sections []Section) (*State, error) {
	s := &State{index: map[string]int{}}
	for _, sec := range sections {
		if _, dup := s.index[sec.Name]; dup {
			return nil, fmt.Errorf("%w: section %q given twice", ErrMalformed, sec.Name)
		}
		s.index[sec.Name] = len(s.sections)
		s.sections = append(s.sections, sec)
	}
	return s, nil
}

// PutJSON stores v as section name, replacing a section of that name.
func (s *State) PutJSON(name string, v any) error {
	if err := checkName(name); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode section %q: %w", name, err)
	}
	if i, ok := s.index[name]; ok {
		s.sections[i].Data = data
		return nil
	}
	s.index[name] = len(s.sections)
	s.sections = append(s.sections, Section{Name: name, Data: data})
	return nil
}

// GetJSON decodes section name into v; fields v does not have are an
// error, since they mean the writer knew something this reader does not.
func (s *State) GetJSON(name string, v any) error {
	i, ok := s.index[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrNoSection, name)
	}
	dec := json.NewDecoder(bytes.NewReader(s.sections[i].Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("section %q: %w: %w", name, ErrMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("section %q: %w: data after the JSON value", name, ErrMalformed)
	}
	return nil
}

// Sections returns the sections in order.
func (s *State) Sections() []Section { return append([]Section(nil), s.sections...) }

// Names lists, in order, the sections whose names start with prefix.
func (s *State) Names(prefix string) []string {
	var out []string
	for _, sec := range s.sections {
		if strings.HasPrefix(sec.Name, prefix) {
			out = append(out, sec.Name)
		}
	}
	return out
}
