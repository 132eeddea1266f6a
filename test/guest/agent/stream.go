package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// The data exchange that the vsock and network scenarios check. One side
// ("send") connects, writes BYTES of deterministic pseudo-random data,
// half-closes, and reads back whatever the other side returns; the other
// side ("serve") accepts one connection and echoes every byte until end of
// file. Both print what they saw as "key=value" lines (byte counts and
// sha256 sums), so a scenario can compare the two ends: data crossed both
// ways intact when the sums are equal everywhere.

// stream is one connection of any of the supported kinds; CloseWrite is the
// half-close that tells the peer no more data follows.
type stream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// defaultTimeout bounds a whole serve or send, waiting for the peer
// included: the scenarios run under an emulator, but never forever.
const defaultTimeout = 100 * time.Second

// payloadSeed fixes the pseudo-random payload, so every run sends the same
// bytes and a sum can be compared across runs.
var payloadSeed = [32]byte{'t', 'e', 'r', 'n', '-', 'e', '2', 'e'}

// exitAfterTimeout ends the process with an error once the command has run
// longer than $AGENT_TIMEOUT (a Go duration) or def: a blocked accept,
// connect or read cannot otherwise be bounded across every kind.
func exitAfterTimeout(what string, def time.Duration) (deadline time.Time, err error) {
	d := def
	if s := os.Getenv("AGENT_TIMEOUT"); s != "" {
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("AGENT_TIMEOUT=%q: want a positive duration like 90s", s)
		}
	}
	time.AfterFunc(d, func() {
		fmt.Fprintf(os.Stderr, "agent %s: gave up after %v\n", what, d)
		os.Exit(3)
	})
	return time.Now().Add(d), nil
}

// serveCmd: serve NETWORK ADDRESS.
func serveCmd(args []string) error {
	if len(args) != 2 {
		return errors.New("want NETWORK ADDRESS (tcp HOST:PORT, unix PATH, vsock PORT)")
	}
	if _, err := exitAfterTimeout("serve", defaultTimeout); err != nil {
		return err
	}
	ln, err := listen(args[0], args[1])
	if err != nil {
		return err
	}
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept on %s %s: %w", args[0], args[1], err)
	}
	defer c.Close()
	start := time.Now()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(c, h), c)
	fmt.Printf("received=%d\n", n)
	fmt.Printf("received-sha256=%s\n", hex.EncodeToString(h.Sum(nil)))
	fmt.Printf("elapsed-ms=%d\n", time.Since(start).Milliseconds())
	if err != nil {
		return fmt.Errorf("echo on %s %s after %d bytes: %w", args[0], args[1], n, err)
	}
	if err := c.CloseWrite(); err != nil {
		return fmt.Errorf("half-close on %s %s: %w", args[0], args[1], err)
	}
	return nil
}

// sendCmd: send NETWORK ADDRESS BYTES.
func sendCmd(args []string) error {
	if len(args) != 3 {
		return errors.New("want NETWORK ADDRESS BYTES (tcp HOST:PORT, unix PATH, vsock CID:PORT, tern-vsock SOCKET:PORT)")
	}
	size, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil || size < 0 {
		return fmt.Errorf("BYTES %q: want a non-negative number", args[2])
	}
	deadline, err := exitAfterTimeout("send", defaultTimeout)
	if err != nil {
		return err
	}
	c, attempts, err := dialUntil(args[0], args[1], deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("connect-attempts=%d\n", attempts)
	start := time.Now()

	type result struct {
		n   int64
		sum []byte
		err error
	}
	echoed := make(chan result, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, c)
		echoed <- result{n, h.Sum(nil), err}
	}()

	h := sha256.New()
	payload := io.LimitReader(rand.NewChaCha8(payloadSeed), size)
	sent, werr := io.Copy(io.MultiWriter(c, h), payload)
	if werr == nil {
		werr = c.CloseWrite()
	}
	fmt.Printf("sent=%d\n", sent)
	fmt.Printf("sent-sha256=%s\n", hex.EncodeToString(h.Sum(nil)))
	if werr != nil {
		return fmt.Errorf("write to %s %s after %d bytes: %w", args[0], args[1], sent, werr)
	}
	r := <-echoed
	fmt.Printf("echoed=%d\n", r.n)
	fmt.Printf("echoed-sha256=%s\n", hex.EncodeToString(r.sum))
	fmt.Printf("elapsed-ms=%d\n", time.Since(start).Milliseconds())
	if r.err != nil {
		return fmt.Errorf("read from %s %s after %d bytes: %w", args[0], args[1], r.n, r.err)
	}
	return nil
}

// dialUntil connects, retrying until deadline: the peer may still be
// booting or not yet listening.
func dialUntil(network, address string, deadline time.Time) (stream, int, error) {
	for attempt := 1; ; attempt++ {
		c, err := dial(network, address)
		if err == nil {
			return c, attempt, nil
		}
		var bad *badAddressError
		if errors.As(err, &bad) || time.Now().Add(time.Second).After(deadline) {
			return nil, attempt, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// badAddressError is a dial that no retry can fix.
type badAddressError struct{ msg string }

func (e *badAddressError) Error() string { return e.msg }
