package aml

import "fmt"

// Name is DefName: binds Path to the value of Object.
type Name struct {
	Path  string
	Value Object
}

// AppendAML implements Object.
func (n Name) AppendAML(dst []byte) ([]byte, error) {
	if n.Value == nil {
		return nil, fmt.Errorf("name %q: %w", n.Path, errNilObject)
	}
	dst = append(dst, nameOp)
	dst, err := AppendNameString(dst, n.Path)
	if err != nil {
		return nil, err
	}
	dst, err = n.Value.AppendAML(dst)
	if err != nil {
		return nil, fmt.Errorf("name %q: %w", n.Path, err)
	}
	return dst, nil
}

// Scope is DefScope: opens an existing namespace object, such as \_SB, to
// add Body to it.
type Scope struct {
	Path string
	Body []Object
}

// AppendAML implements Object.
func (s Scope) AppendAML(dst []byte) ([]byte, error) {
	body, err := namedBody(s.Path, s.Body)
	if err != nil {
		return nil, fmt.Errorf("scope %q: %w", s.Path, err)
	}
	return appendWithPkgLength(append(dst, scopeOp), body)
}

// Device is DefDevice: declares a device object named Path holding Body.
type Device struct {
	Path string
	Body []Object
}

// AppendAML implements Object.
func (d Device) AppendAML(dst []byte) ([]byte, error) {
	body, err := namedBody(d.Path, d.Body)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", d.Path, err)
	}
	return appendWithPkgLength(append(dst, extOpPrefix, deviceOpExtOp), body)
}

func namedBody(path string, objs []Object) ([]byte, error) {
	body, err := AppendNameString(nil, path)
	if err != nil {
		return nil, err
	}
	return appendTerms(body, objs)
}

// Package is DefPackage with at most 255 elements.
type Package []Object

// AppendAML implements Object.
func (p Package) AppendAML(dst []byte) ([]byte, error) {
	if len(p) > 255 {
		return nil, fmt.Errorf("%w: package has %d elements, at most 255 fit NumElements", ErrTooLong, len(p))
	}
	body, err := appendTerms([]byte{byte(len(p))}, p)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	return appendWithPkgLength(append(dst, packageOp), body)
}

// Buffer is DefBuffer initialised with its bytes; the BufferSize operand is
// their count.
type Buffer []byte

// AppendAML implements Object.
func (b Buffer) AppendAML(dst []byte) ([]byte, error) {
	body, err := Integer(len(b)).AppendAML(nil)
	if err != nil {
		return nil, err
	}
	return appendWithPkgLength(append(dst, bufferOp), append(body, b...))
}
