// Package migrate moves a running VM to another tern over any byte stream
// (a TCP or TLS connection, a Unix socket, an orchestrator's own
// transport): a handshake the destination checks before any page moves,
// pre-copy rounds driven by the dirty log, then a short stop-and-copy of
// the last pages and the VM's state, a commit, and the destination's
// confirmation. PROTOCOL.md documents the stream and the failure rules.
// The VM itself is behind the Source and Destination interfaces, which
// vmm implements; the snapshot file format is in migrate/snapshot.
package migrate
