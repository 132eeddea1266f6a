// Package block implements the virtio block device (virtio 1.2 section
// 5.2, device ID 2) backed by a raw disk image: a regular file or a host
// block device whose bytes are the guest's sectors, one for one.
//
// The device has a single request queue. A worker goroutine, started by
// Activate and joined by Reset, takes each request from the queue, checks
// it against the disk's capacity and the direction of its buffers, and
// performs it with pread/pwrite straight between the image and guest
// memory, fdatasync for flushes and fallocate for discard and write-zeroes.
// A request that is wrong in itself (bad sector range, wrong layout,
// write to a read-only disk) fails with VIRTIO_BLK_S_IOERR, an unknown one
// with VIRTIO_BLK_S_UNSUPP, and processing goes on; only a broken ring, or
// a chain with no byte to report a status in, stops the device and asks
// the transport for a reset.
package block
