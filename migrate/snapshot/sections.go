package snapshot

import (
	"encoding/json"
	"fmt"
	"strings"
)

// State is an ordered set of uniquely named sections, with JSON helpers
// for their payloads. The zero value is an empty State ready to use.
type State struct {
	sections []Section
	index    map[string]int
}

// NewState wraps sections, which must have valid, distinct names. The
// State keeps the slice's order but not the slice itself.
func NewState(sections []Section) (*State, error) {
	if err := checkSections(sections); err != nil {
		return nil, fmt.Errorf("vmstate: %w", err)
	}
	s := &State{}
	for _, sec := range sections {
		s.Put(sec.Name, sec.Data)
	}
	return s, nil
}

// Put stores data as section name, replacing the data of an existing
// section of that name (which keeps its place) or appending a new one.
func (s *State) Put(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("vmstate: %w", err)
	}
	if i, ok := s.index[name]; ok {
		s.sections[i].Data = data
		return nil
	}
	if len(s.sections) >= MaxSections {
		return fmt.Errorf("vmstate: %w: section %q would be section %d, at most %d", ErrMalformed, name, len(s.sections)+1, MaxSections)
	}
	if s.index == nil {
		s.index = make(map[string]int)
	}
	s.index[name] = len(s.sections)
	s.sections = append(s.sections, Section{Name: name, Data: data})
	return nil
}

// Get returns the data of section name.
func (s *State) Get(name string) ([]byte, error) {
	i, ok := s.index[name]
	if !ok {
		return nil, &detailError{kind: ErrNoSection, msg: fmt.Sprintf("vmstate: no section %q", name)}
	}
	return s.sections[i].Data, nil
}

// PutJSON stores the JSON encoding of v as section name (see Put).
func (s *State) PutJSON(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("vmstate: encode section %q: %w", name, err)
	}
	return s.Put(name, data)
}

// GetJSON decodes section name into v. A field v lacks is an error, not
// silently dropped: it means the writer recorded state this reader would
// lose. A missing section is ErrNoSection. Decoding is not bounded beyond
// the section's size: a reader of untrusted files uses GetJSONWithin.
func (s *State) GetJSON(name string, v any) error {
	return s.GetJSONWithin(name, v, JSONLimits{})
}

// GetJSONWithin is GetJSON for a section that must keep within lim, which
// is checked before anything is decoded (ErrTooLarge otherwise).
func (s *State) GetJSONWithin(name string, v any, lim JSONLimits) error {
	data, err := s.Get(name)
	if err != nil {
		return err
	}
	if err := DecodeJSON(data, v, lim); err != nil {
		return fmt.Errorf("vmstate: section %q: %w", name, err)
	}
	return nil
}

// Has reports whether section name exists.
func (s *State) Has(name string) bool {
	_, ok := s.index[name]
	return ok
}

// Sections returns the sections in order, ready for WriteState. The slice
// is a copy; the Data slices are shared.
func (s *State) Sections() []Section { return append([]Section(nil), s.sections...) }

// Names lists, in order, the names that start with prefix (all names for
// ""), for example every "vcpu/" section.
func (s *State) Names(prefix string) []string {
	var out []string
	for _, sec := range s.sections {
		if strings.HasPrefix(sec.Name, prefix) {
			out = append(out, sec.Name)
		}
	}
	return out
}
