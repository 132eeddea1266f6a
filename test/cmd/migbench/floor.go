package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// floorCopy is the least any migration of data can cost here: the bytes
// sent over loopback TCP from warm memory into freshly mapped anonymous
// memory, which the receiver touches for the first time as the bytes
// land (the same first touch a migration destination pays), timed from
// the dial to the receiver's acknowledgement that the last byte is in.
// No protocol, no page tracking, no guest.
func floorCopy(ctx context.Context, data []byte, limit time.Duration) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("floor: listen: %w", err)
	}
	defer ln.Close()
	deadline := time.Now().Add(limit)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	recvErr := make(chan error, 1)
	go func() { recvErr <- floorReceive(ln, len(data), deadline) }()

	start := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("floor: dial: %w", err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write(data); err != nil {
		return 0, fmt.Errorf("floor: send: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("floor: waiting for the receiver's acknowledgement: %w (receiver: %v)", err, <-recvErr)
	}
	elapsed := time.Since(start)
	if err := <-recvErr; err != nil {
		return 0, err
	}
	return elapsed, nil
}

// floorReceive accepts one connection and reads n bytes into a fresh
// anonymous mapping, then acknowledges with one byte.
func floorReceive(ln net.Listener, n int, deadline time.Time) error {
	ln.(*net.TCPListener).SetDeadline(deadline)
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("floor: accept: %w", err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("floor: mmap %d bytes: %w", n, err)
	}
	defer unix.Munmap(mem)
	if _, err := io.ReadFull(c, mem); err != nil {
		return fmt.Errorf("floor: receive: %w", err)
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return fmt.Errorf("floor: acknowledge: %w", err)
	}
	return nil
}
