package virtio

import "io"

// Memory is guest RAM as devices see it: offsets are guest physical
// addresses. Every access outside RAM must fail with an error rather than
// touch anything else. The VMM's *memory.Memory satisfies it.
type Memory interface {
	io.ReaderAt
	io.WriterAt
	// Slice returns the host bytes backing [gpa, gpa+length), which must
	// lie inside one contiguous piece of guest RAM. Callers use the slice
	// only for the duration of one request and never keep it.
	Slice(gpa, length uint64) ([]byte, error)
}
