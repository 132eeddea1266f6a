package cputemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on a custom template, far above any real one (Firecracker's own
// templates have under ten leaves and one MSR), so that a client's
// template cannot make tern build without limit.
const (
	maxCPUIDModifiers    = 512
	maxRegisterModifiers = 16
	maxMSRModifiers      = 256
	maxCapabilities      = 256
)

// ErrBadTemplate is wrapped by every error of ParseCustom.
var ErrBadTemplate = errors.New("bad custom CPU template")

// The JSON form: Firecracker's custom CPU template language (its
// docs/cpu_templates/schema.json), x86 parts only.
type jsonTemplate struct {
	KVMCapabilities []string       `json:"kvm_capabilities,omitempty"`
	CPUIDModifiers  []jsonLeaf     `json:"cpuid_modifiers,omitempty"`
	MSRModifiers    []jsonRegister `json:"msr_modifiers,omitempty"`
}

type jsonLeaf struct {
	Leaf      string        `json:"leaf"`
	Subleaf   string        `json:"subleaf"`
	Flags     uint32        `json:"flags"`
	Modifiers []jsonCPUIDRg `json:"modifiers"`
}

type jsonCPUIDRg struct {
	Register string `json:"register"`
	Bitmap   string `json:"bitmap"`
}

type jsonRegister struct {
	Addr   string `json:"addr"`
	Bitmap string `json:"bitmap"`
}

// ParseCustom reads a custom template in Firecracker's JSON: cpuid_modifiers
// (leaf and subleaf as "0x"/"0b" strings, flags, and register bitmaps such
// as "0bxx01_xxxx", where 0 clears, 1 sets and x keeps a bit, a short
// bitmap meaning x for the high bits), msr_modifiers (addr and a 64-bit
// bitmap) and kvm_capabilities ("N" to check KVM_CAP N, "!N" to drop it
// from the checks). Unknown keys, the ARM-only keys included, are refused.
func ParseCustom(data []byte) (*Template, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadTemplate}, a...)...)
	}
	var j jsonTemplate
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		if strings.Contains(err.Error(), `"reg_modifiers"`) || strings.Contains(err.Error(), `"vcpu_features"`) {
			return nil, bad("reg_modifiers and vcpu_features are for aarch64 hosts; this is x86-64")
		}
		return nil, bad("%w", err)
	}
	if dec.More() {
		return nil, bad("data after the template's JSON object")
	}
	if len(j.CPUIDModifiers) > maxCPUIDModifiers || len(j.MSRModifiers) > maxMSRModifiers || len(j.KVMCapabilities) > maxCapabilities {
		return nil, bad("too many modifiers (at most %d CPUID leaves, %d MSRs, %d capabilities)", maxCPUIDModifiers, maxMSRModifiers, maxCapabilities)
	}
	t := &Template{}
	for i, c := range j.KVMCapabilities {
		n, remove := strings.CutPrefix(c, "!")
		v, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return nil, bad("kvm_capabilities[%d] %q: want a decimal KVM_CAP number, with ! in front to drop it", i, c)
		}
		t.KVMCapabilities = append(t.KVMCapabilities, Capability{Number: uint32(v), Remove: remove})
	}
	for i, l := range j.CPUIDModifiers {
		m := CPUIDModifier{Flags: l.Flags}
		var err error
		if m.Leaf, err = parseNumber(l.Leaf, 32); err != nil {
			return nil, bad("cpuid_modifiers[%d] leaf: %w", i, err)
		}
		if m.Subleaf, err = parseNumber(l.Subleaf, 32); err != nil {
			return nil, bad("cpuid_modifiers[%d] subleaf: %w", i, err)
		}
		if len(l.Modifiers) > maxRegisterModifiers {
			return nil, bad("cpuid_modifiers[%d]: %d register modifiers (at most %d)", i, len(l.Modifiers), maxRegisterModifiers)
		}
		for k, r := range l.Modifiers {
			rm := RegisterModifier{Register: -1}
			for n, name := range registerNames {
				if r.Register == name {
					rm.Register = Register(n)
				}
			}
			if rm.Register < 0 {
				return nil, bad("cpuid_modifiers[%d] (leaf %#x) modifiers[%d]: register %q: want eax, ebx, ecx or edx", i, m.Leaf, k, r.Register)
			}
			f, v, err := parseBitmap(r.Bitmap, 32)
			if err != nil {
				return nil, bad("cpuid_modifiers[%d] (leaf %#x) %s: %w", i, m.Leaf, r.Register, err)
			}
			rm.Bits = Bits32{Filter: uint32(f), Value: uint32(v)}
			m.Registers = append(m.Registers, rm)
		}
		t.CPUID = append(t.CPUID, m)
	}
	for i, r := range j.MSRModifiers {
		addr, err := parseNumber(r.Addr, 32)
		if err != nil {
			return nil, bad("msr_modifiers[%d] addr: %w", i, err)
		}
		f, v, err := parseBitmap(r.Bitmap, 64)
		if err != nil {
			return nil, bad("msr_modifiers[%d] (MSR %#x): %w", i, addr, err)
		}
		t.MSRs = append(t.MSRs, MSRModifier{Addr: addr, Bits: Bits64{Filter: f, Value: v}})
	}
	return t, nil
}

// parseNumber reads Firecracker's numbers in strings: "0x" hexadecimal
// or "0b" binary, nothing else.
func parseNumber(s string, width int) (uint32, error) {
	var digits string
	base := 0
	switch {
	case strings.HasPrefix(s, "0x"):
		digits, base = s[2:], 16
	case strings.HasPrefix(s, "0b"):
		digits, base = s[2:], 2
	default:
		return 0, fmt.Errorf("%q: want a number with 0x (hexadecimal) or 0b (binary) in front", s)
	}
	v, err := strconv.ParseUint(digits, base, width)
	if err != nil {
		return 0, fmt.Errorf("%q is not a %d-bit number", s, width)
	}
	return uint32(v), nil
}

// parseBitmap reads "0b" then up to width characters 0, 1 or x, with _
// anywhere as a separator; missing high characters are x.
func parseBitmap(s string, width int) (filter, value uint64, err error) {
	body, ok := strings.CutPrefix(s, "0b")
	if !ok {
		return 0, 0, fmt.Errorf("bitmap %q: want 0b followed by 0, 1 and x", s)
	}
	n := 0
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '_' {
			continue
		}
		if c != '0' && c != '1' && c != 'x' {
			return 0, 0, fmt.Errorf("bitmap %q: %q is not 0, 1, x or _", s, c)
		}
		if n++; n > width {
			return 0, 0, fmt.Errorf("bitmap %q: more than %d bits", s, width)
		}
		filter <<= 1
		value <<= 1
		if c != 'x' {
			filter |= 1
			if c == '1' {
				value |= 1
			}
		}
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("bitmap %q has no bits", s)
	}
	return filter, value, nil
}

// formatBitmap writes a bitmap of width bits as parseBitmap reads it.
func formatBitmap(filter, value uint64, width int) string {
	var b strings.Builder
	b.WriteString("0b")
	for i := width - 1; i >= 0; i-- {
		switch {
		case filter>>i&1 == 0:
			b.WriteByte('x')
		case value>>i&1 == 1:
			b.WriteByte('1')
		default:
			b.WriteByte('0')
		}
	}
	return b.String()
}

// MarshalCustom writes t in Firecracker's custom template JSON, which
// ParseCustom reads back (a static template's name is not part of it).
func (t *Template) MarshalCustom() ([]byte, error) {
	var j jsonTemplate
	for _, c := range t.KVMCapabilities {
		s := strconv.FormatUint(uint64(c.Number), 10)
		if c.Remove {
			s = "!" + s
		}
		j.KVMCapabilities = append(j.KVMCapabilities, s)
	}
	for _, m := range t.CPUID {
		l := jsonLeaf{Leaf: fmt.Sprintf("%#x", m.Leaf), Subleaf: fmt.Sprintf("%#x", m.Subleaf), Flags: m.Flags, Modifiers: []jsonCPUIDRg{}}
		for _, r := range m.Registers {
			l.Modifiers = append(l.Modifiers, jsonCPUIDRg{Register: r.Register.String(), Bitmap: formatBitmap(uint64(r.Bits.Filter), uint64(r.Bits.Value), 32)})
		}
		j.CPUIDModifiers = append(j.CPUIDModifiers, l)
	}
	for _, m := range t.MSRs {
		j.MSRModifiers = append(j.MSRModifiers, jsonRegister{Addr: fmt.Sprintf("%#x", m.Addr), Bitmap: formatBitmap(m.Bits.Filter, m.Bits.Value, 64)})
	}
	return json.Marshal(j)
}

// MarshalJSON writes t in Firecracker's custom form (MarshalCustom), so
// a template can sit inside other JSON; a static template's name is not
// part of it.
func (t *Template) MarshalJSON() ([]byte, error) { return t.MarshalCustom() }

// UnmarshalJSON reads a template as ParseCustom does.
func (t *Template) UnmarshalJSON(data []byte) error {
	p, err := ParseCustom(data)
	if err != nil {
		return err
	}
	*t = *p
	return nil
}
