package virtio

import "sync/atomic"

// fullFence orders every earlier load and store before every later one. On
// x86 a locked read-modify-write is a full barrier, and sync/atomic's Add is
// one; the word is local, so no cache line is shared between callers.
func fullFence() {
	var w uint32
	atomic.AddUint32(&w, 0)
}
