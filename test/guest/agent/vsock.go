package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// AF_VSOCK stream sockets, which the standard library's net package does
// not know: plain blocking descriptors wrapped in os.File for Read and
// Write (a blocked call occupies one thread, which is all this needs).

// vsockListener listens on a port of the guest's own CID.
type vsockListener struct {
	fd   int
	port uint32
}

func listenVsock(port uint32) (*vsockListener, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock socket: %w (is the vsock transport loaded?)", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind vsock port %d: %w", port, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen on vsock port %d: %w", port, err)
	}
	return &vsockListener{fd: fd, port: port}, nil
}

func (l *vsockListener) Accept() (stream, error) {
	for {
		fd, _, err := unix.Accept4(l.fd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("accept on vsock port %d: %w", l.port, err)
		}
		return newVsockConn(fd, fmt.Sprintf("vsock port %d", l.port)), nil
	}
}

func (l *vsockListener) Close() error { return unix.Close(l.fd) }

// dialVsock connects to port of cid (2 is the host: tern hands such a
// connection to the Unix socket "<path>_<port>").
func dialVsock(cid, port uint32) (stream, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &badAddressError{fmt.Sprintf("vsock socket: %v (is the vsock transport loaded?)", err)}
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to vsock %d:%d: %w", cid, port, err)
	}
	return newVsockConn(fd, fmt.Sprintf("vsock %d:%d", cid, port)), nil
}

// vsockConn is one connected vsock stream.
type vsockConn struct {
	*os.File
	fd int
}

func newVsockConn(fd int, name string) *vsockConn {
	return &vsockConn{File: os.NewFile(uintptr(fd), name), fd: fd}
}

// CloseWrite sends the peer a shutdown for sending: it reads end of file
// once it has everything written before.
func (c *vsockConn) CloseWrite() error {
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		return fmt.Errorf("shutdown(SHUT_WR) on %s: %w", c.Name(), err)
	}
	return nil
}
