package mmds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultLimit is the most bytes the document may take as compact JSON,
// Firecracker's default (--mmds-size-limit).
const DefaultLimit = 51200

// Errors of the store.
var (
	ErrTooLarge       = errors.New("MMDS data exceeds the size limit")
	ErrNotInitialized = errors.New("MMDS data store is not initialized (PUT it first)")
	ErrBadJSON        = errors.New("MMDS data is not valid JSON")
)

// maxDepth bounds the nesting of a document. The size limit bounds it
// already; this keeps recursion shallow whatever the limit.
const maxDepth = 64

// Store holds the metadata document. It is safe for concurrent use: the
// API writes while guests read.
type Store struct {
	limit int

	mu   sync.RWMutex
	data any    // decoded document (json.Number for numbers); nil before Put
	raw  []byte // data as compact JSON, sorted keys
	set  bool
}

// NewStore returns an empty store whose documents may take limit bytes as
// compact JSON; limit <= 0 means DefaultLimit.
func NewStore(limit int) *Store {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Store{limit: limit, raw: []byte("{}")}
}

// Limit is the store's size limit in bytes.
func (s *Store) Limit() int { return s.limit }

// Put replaces the document with data, a JSON value of at most the limit
// (measured compact).
func (s *Store) Put(data []byte) error {
	v, err := decode(data, s.limit)
	if err != nil {
		return err
	}
	raw, err := s.encode(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.raw, s.set = v, raw, true
	return nil
}

// Patch applies data to the document as a JSON merge patch (RFC 7396). The
// result must keep within the limit; on error the document is unchanged.
// A store never Put fails with ErrNotInitialized, as Firecracker's does.
func (s *Store) Patch(data []byte) error {
	p, err := decode(data, s.limit)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.set {
		return ErrNotInitialized
	}
	// The stored document is never modified in place: readers hold it.
	v := mergePatch(deepCopy(s.data), p)
	raw, err := s.encode(v)
	if err != nil {
		return err
	}
	s.data, s.raw = v, raw
	return nil
}

// Get returns the document as compact JSON ("{}" before the first Put).
func (s *Store) Get() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.raw)
}

// lookup returns the value at the JSON pointer path (RFC 6901), or false.
func (s *Store) lookup(path string) (any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.set {
		return nil, false
	}
	return pointer(s.data, path)
}

func (s *Store) encode(v any) ([]byte, error) {
	raw, err := marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	if len(raw) > s.limit {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), s.limit)
	}
	return raw, nil
}

// decode parses one JSON value of data, which may hold at most limit
// bytes of it (whitespace aside, so the input itself is allowed four
// times that, to be decoded at all).
func decode(data []byte, limit int) (any, error) {
	if len(data) > 4*limit+1024 {
		return nil, fmt.Errorf("%w: %d bytes of input, the limit is %d", ErrTooLarge, len(data), limit)
	}
	if err := checkDepth(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON value", ErrBadJSON)
	}
	return v, nil
}

// checkDepth refuses nesting deeper than maxDepth before anything is
// decoded. Brackets inside strings are skipped.
func checkDepth(data []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > maxDepth {
				return fmt.Errorf("%w: nested deeper than %d", ErrBadJSON, maxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// mergePatch applies patch to target as RFC 7396 says and returns the
// result; target may be reused.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// deepCopy copies the maps and slices of a decoded document.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// marshal is compact JSON with sorted keys and without the HTML escapes
// of json.Marshal ("<" stays "<"), as Firecracker writes it.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
