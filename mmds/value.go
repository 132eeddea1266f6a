package mmds

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Errors of a guest's GET.
var (
	ErrNotFound        = errors.New("the MMDS resource does not exist")
	ErrUnsupportedType = errors.New("cannot retrieve value: the value has an unsupported type")
)

// Value answers a GET of path: in IMDS format (imds true) a string is
// itself and an object its keys, sorted, one per line, with "/" after the
// keys of objects; other values are ErrUnsupportedType. Otherwise the
// value as compact JSON. Runs of "/" in path count as one, and a trailing
// "/" is ignored.
func (s *Store) Value(path string, imds bool) ([]byte, error) {
	v, ok := s.lookup(cleanPath(path))
	if !ok {
		return nil, ErrNotFound
	}
	if !imds {
		return marshal(v)
	}
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k, e := range v {
			if _, obj := e.(map[string]any); obj {
				k += "/"
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return []byte(strings.Join(keys, "\n")), nil
	}
	return nil, ErrUnsupportedType
}

// cleanPath folds runs of "/" and drops a trailing one, giving a JSON
// pointer ("" is the whole document).
func cleanPath(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && b.Len() > 0 && strings.HasSuffix(b.String(), "/") {
			continue
		}
		b.WriteByte(p[i])
	}
	return strings.TrimSuffix(b.String(), "/")
}

// pointer resolves an RFC 6901 JSON pointer in v.
func pointer(v any, ptr string) (any, bool) {
	if ptr == "" {
		return v, true
	}
	if ptr[0] != '/' {
		return nil, false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			e, ok := c[tok]
			if !ok {
				return nil, false
			}
			v = e
		case []any:
			if tok == "" || (len(tok) > 1 && tok[0] == '0') {
				return nil, false
			}
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}
