package migrate

import "syscall"

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14): fault the range
// in, writable, in one call.
const madvPopulateWrite = 23

// populate backs b with memory before the stream is read into it: one
// call for a whole run instead of a page fault per page as the socket's
// data lands, which is much of what receiving into fresh guest RAM
// costs. Kernels without it refuse, and the faults happen as before.
func populate(b []byte) {
	_ = syscall.Madvise(b, madvPopulateWrite)
}
