// Package mmds is the microVM metadata service in the shape of
// Firecracker's MMDS: a JSON document the host puts and patches (Store),
// which the guest reads over HTTP at a link-local address (169.254.169.254
// unless configured otherwise) through the network interfaces allowed to
// reach it.
//
// The guest side is a Stack per interface: it takes the Ethernet frames the
// guest sends, answers ARP requests for the service's address and serves a
// minimal TCP/IPv4 endpoint on port 80 with an HTTP/1.x server, and hands
// back the frames to deliver to the guest. Nothing it receives reaches the
// host's network. Every byte it parses comes from the guest and is treated
// as hostile: lengths are checked before use, buffers and tables are
// bounded, and bad input is dropped (or answered with an HTTP error), never
// a panic.
//
// HTTP semantics are Firecracker's: GET of a path returns the value there,
// a string as plain text and an object as its keys one per line (a "/"
// after the keys of objects), or JSON with "Accept: application/json".
// Version 2 wants a session token, got with PUT /latest/api/token and the
// X-metadata-token-ttl-seconds header, sent back in X-metadata-token;
// version 1 answers plain GETs.
package mmds
