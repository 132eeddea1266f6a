package snapshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// JSONLimits bound a JSON payload before it is decoded. A payload's size
// alone does not bound what decoding it costs: encoding/json turns the
// three bytes "{}," in an array into a whole Go struct (40 bytes for a
// CPUID entry), and grows slices by doubling, so a 60 MB state file of
// such arrays took 3.5 GB. Counting elements first, without allocating,
// refuses such a payload before anything is built from it. A zero field
// sets no limit.
type JSONLimits struct {
	MaxBytes int // the payload's length
	MaxElems int // the elements of any one array, the members of any one object
	MaxDepth int // arrays and objects nested in one another
}

// Check applies the limits to data without decoding it. It only counts
// (JSON syntax is left to the decoder), and allocates nothing but the
// depth stack. Errors wrap ErrTooLarge.
func (l JSONLimits) Check(data []byte) error {
	if l.MaxBytes > 0 && len(data) > l.MaxBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), l.MaxBytes)
	}
	// commas[d] counts the separators seen so far in the open array or
	// object at depth d: it holds commas[d]+1 elements.
	commas := make([]int, 0, min(max(l.MaxDepth, 1), 64))
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if l.MaxDepth > 0 && len(commas) >= l.MaxDepth {
				return fmt.Errorf("%w: arrays and objects nested more than %d deep (at byte %d)", ErrTooLarge, l.MaxDepth, i)
			}
			commas = append(commas, 0)
		case ']', '}':
			if len(commas) > 0 {
				commas = commas[:len(commas)-1]
			}
		case ',':
			if n := len(commas); n > 0 {
				commas[n-1]++
				if l.MaxElems > 0 && commas[n-1] >= l.MaxElems {
					return fmt.Errorf("%w: an array or object of more than %d elements (at byte %d)", ErrTooLarge, l.MaxElems, i)
				}
			}
		}
	}
	return nil
}

// DecodeJSON checks data against lim and then decodes it into v as
// GetJSON does: a field v lacks is an error, and so is anything after the
// value.
func DecodeJSON(data []byte, v any, lim JSONLimits) error {
	if err := lim.Check(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	return nil
}
