// Package vsock is the virtio socket device (virtio 1.2 section 5.10) with
// a host side made of Unix sockets, as Firecracker does it: no vhost kernel
// module, the VMM itself carries every byte.
//
// The host reaches the guest by connecting to the device's socket path and
// writing "CONNECT <port>\n"; the device then opens a stream connection to
// that guest port and answers "OK <hostport>\n" once the guest accepts (or
// closes the Unix connection if the guest refuses). A guest connection to
// CID 2 port P becomes a Unix connection to "<path>_<P>", where a host
// program listens.
//
// Only stream sockets are offered (VIRTIO_VSOCK_F_SEQPACKET is not), with
// the specification's credit-based flow control in both directions: the
// device never sends more payload than the guest's advertised free space,
// and it resets a connection whose guest sends more than the device's.
//
// Threading. Each activation runs one muxer goroutine that owns the three
// virtqueues and guest memory: it parses packets from the transmit queue and
// fills the receive queue. Host-side I/O is done by goroutines driven by
// Go's netpoller: one accept loop, one short-lived goroutine per pending
// "CONNECT" line or outgoing dial, and a reader and a writer per connection.
// They never touch guest memory; they exchange bytes with the muxer through
// per-connection buffers under one session lock and wake the muxer through
// a channel. QueueNotify only wakes the muxer, so it never blocks. Reset
// closes every host connection, cancels dials, interrupts the accept loop
// and joins all these goroutines before it returns; the listening socket
// itself lives from New to Close, so host programs that connect while the
// guest driver is not running wait in the listen backlog.
//
// Bounds. At most MaxConnections connections (counting pending CONNECT
// handshakes) exist at once. Per connection the device buffers at most
// BufAlloc bytes from the guest (that is the credit it advertises) and at
// most MaxPayload bytes read from the host, and only reads from the host
// while the guest has credit left, so a slow guest pushes back on the host
// program rather than growing memory.
//
// Snapshots. State holds the configuration (guest CID, socket path). Live
// connections are not saved: after a restore the device sends
// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue so the guest drops
// its sockets, as the specification asks after a migration.
package vsock
