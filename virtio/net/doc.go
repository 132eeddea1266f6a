// Package virtionet is the virtio network device (virtio 1.2 section 5.1,
// device ID 1) backed by a Linux TAP interface.
//
// The TAP is opened with IFF_VNET_HDR and a 12-byte vnet header, the size
// of struct virtio_net_hdr_v1 that every VERSION_1 driver uses, so frames
// cross between the guest's queues and the TAP with their header as is:
// checksum and segmentation offload work end to end, and the kernel is told
// with TUNSETOFFLOAD which offloads the driver accepted so it never hands
// the guest a frame the driver cannot take.
//
// Receive buffers: VIRTIO_NET_F_MRG_RXBUF is offered, and a driver that
// accepts it may post small buffers; a frame then spans as many chains as
// it needs. A driver that refuses it must post chains large enough for any
// frame it may get (65562 bytes once it accepts TSO, as the specification
// asks); a frame larger than the chain at hand is dropped and counted.
//
// When the driver has no receive buffer, the device keeps the one frame it
// already read, stops reading the TAP and waits for the driver's next
// notification, so frames back up in the kernel's TAP queue (where the
// kernel drops and counts them once it is full) instead of being lost
// here; nothing spins.
//
// The package is named virtionet rather than net so that it does not
// shadow the standard library's net package in its users.
package virtionet
