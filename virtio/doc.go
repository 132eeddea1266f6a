// Package virtio implements the device side of virtio 1.2 split virtqueues
// and the interface between a virtio transport and the devices behind it.
//
// The design follows rust-vmm's virtio-queue: a Queue holds only guest
// physical addresses and ring indices, never pointers into guest memory, and
// every method that touches the rings takes the guest Memory as an argument.
// A queue can therefore be driven against a plain byte slice in tests, saved
// as a QueueState and restored into a fresh VM.
//
// The driver is untrusted. Every ring index, descriptor and buffer read from
// guest memory is checked before use: buffers must lie inside guest RAM,
// chains must be no longer than the queue, readable buffers must come
// before writable ones and indirect tables must be well formed. A violation
// is returned as an error wrapping ErrBadChain or ErrBadRing; the device
// then fails the one request or asks its transport for a reset
// (Interrupt.NeedsReset), and the VM goes on. Nothing in this package panics
// on guest input, loops without bound or allocates more than a bounded
// amount per request.
//
// Memory ordering: the rings are shared with vCPUs running concurrently. On
// x86 (the only host tern supports) stores are not reordered with other
// stores nor loads with other loads, so the only barrier the split ring
// protocol needs from the device is a full fence between publishing an
// index and reading the driver's event index; fullFence provides it.
package virtio
