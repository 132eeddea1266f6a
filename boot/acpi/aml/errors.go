package aml

import "errors"

var (
	// ErrBadName reports a NameString that does not follow the grammar.
	ErrBadName = errors.New("aml: invalid name")
	// ErrTooLong reports a construct longer than its encoding allows.
	ErrTooLong = errors.New("aml: too long")
	// ErrBadValue reports a value out of the range its encoding allows.
	ErrBadValue = errors.New("aml: invalid value")

	errNilObject = errors.New("aml: nil object")
)
