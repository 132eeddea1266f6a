package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// listener accepts streams of one kind.
type listener interface {
	Accept() (stream, error)
	Close() error
}

// listen opens a listener: "tcp" on HOST:PORT, "unix" on a socket path (the
// host side of tern's vsock, "<socket>_<port>"), "vsock" on a port of the
// guest's own CID.
func listen(network, address string) (listener, error) {
	switch network {
	case "tcp", "unix":
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, fmt.Errorf("listen on %s %s: %w", network, address, err)
		}
		return netListener{ln}, nil
	case "vsock":
		port, err := parsePort(address)
		if err != nil {
			return nil, err
		}
		return listenVsock(port)
	}
	return nil, fmt.Errorf("network %q: want tcp, unix or vsock", network)
}

// dial connects once: "tcp" to HOST:PORT, "unix" to a socket path,
// "vsock" to CID:PORT, "tern-vsock" to SOCKET:PORT (tern's vsock socket,
// then a guest port through tern's CONNECT handshake).
func dial(network, address string) (stream, error) {
	switch network {
	case "tcp", "unix":
		c, err := net.DialTimeout(network, address, 2*time.Second)
		if err != nil {
			return nil, err
		}
		return c.(stream), nil
	case "vsock":
		cid, port, ok := strings.Cut(address, ":")
		if !ok {
			return nil, &badAddressError{fmt.Sprintf("vsock address %q: want CID:PORT", address)}
		}
		c, err := strconv.ParseUint(cid, 10, 32)
		if err != nil {
			return nil, &badAddressError{fmt.Sprintf("vsock address %q: CID is not a number", address)}
		}
		p, err := parsePort(port)
		if err != nil {
			return nil, err
		}
		return dialVsock(uint32(c), p)
	case "tern-vsock":
		i := strings.LastIndex(address, ":")
		if i < 0 {
			return nil, &badAddressError{fmt.Sprintf("tern-vsock address %q: want SOCKET:PORT", address)}
		}
		p, err := parsePort(address[i+1:])
		if err != nil {
			return nil, err
		}
		return dialTernVsock(address[:i], p)
	}
	return nil, &badAddressError{fmt.Sprintf("network %q: want tcp, unix, vsock or tern-vsock", network)}
}

// dialTernVsock reaches guest port through the monitor's vsock socket: the
// monitor answers "OK <hostport>\n" once the guest accepted, or closes the
// connection when nothing listens on that port (yet).
func dialTernVsock(socket string, port uint32) (stream, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UnixConn)
	fail := func(err error) (stream, error) {
		uc.Close()
		return nil, err
	}
	if _, err := fmt.Fprintf(uc, "CONNECT %d\n", port); err != nil {
		return fail(fmt.Errorf("CONNECT %d on %s: %w", port, socket, err))
	}
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	// What follows the answer line is the guest's data: read only the line.
	line, err := readLine(uc)
	if err != nil {
		return fail(fmt.Errorf("CONNECT %d on %s: no answer: %w", port, socket, err))
	}
	if !strings.HasPrefix(line, "OK ") {
		return fail(fmt.Errorf("CONNECT %d on %s: answer %q, want \"OK <port>\"", port, socket, line))
	}
	uc.SetReadDeadline(time.Time{})
	return uc, nil
}

// readLine reads up to a newline one byte at a time, so it never reads
// past it.
func readLine(c net.Conn) (string, error) {
	var b strings.Builder
	var ch [1]byte
	for b.Len() < 64 {
		if _, err := io.ReadFull(c, ch[:]); err != nil {
			return b.String(), err
		}
		if ch[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(ch[0])
	}
	return b.String(), fmt.Errorf("answer %q too long", b.String())
}

func parsePort(s string) (uint32, error) {
	p, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, &badAddressError{fmt.Sprintf("port %q is not a number", s)}
	}
	return uint32(p), nil
}

// netListener adapts a net.Listener whose connections can half-close.
type netListener struct{ net.Listener }

func (l netListener) Accept() (stream, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return c.(stream), nil
}
