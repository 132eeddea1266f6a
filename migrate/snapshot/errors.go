package snapshot

import "errors"

// Sentinel errors. Every error this package returns about a file's content
// wraps one of them (test with errors.Is) and says in words what was wrong.
var (
	ErrBadMagic  = errors.New("not a tern snapshot")
	ErrVersion   = errors.New("unsupported snapshot format version")
	ErrTruncated = errors.New("truncated")
	ErrChecksum  = errors.New("checksum mismatch: the file is corrupt")
	ErrMalformed = errors.New("malformed")
	ErrNoSection = errors.New("no such section")
	ErrTooLarge  = errors.New("too large")
)

// detailError carries a complete message of its own while still matching
// its sentinel, so that messages read naturally ("format version 7, this
// tern reads version 1") instead of stacking the sentinel's words in front.
type detailError struct {
	kind error
	msg  string
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.kind }
