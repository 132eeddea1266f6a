// Package migrate will hold the snapshot format (magic, version, named
// sections, checksum) and the live-migration protocol (pre-copy rounds
// driven by the dirty log, then a short stop-and-copy) over any
// io.Reader/io.Writer. It is empty until the snapshot issue lands; the
// packages below it already keep their state in plain State structs
// (devices.SerialState, virtio.QueueState, mmio.State, each device's State)
// for it to capture.
package migrate
