package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// holdServeCmd: hold-serve NETWORK ADDRESS [COMMANDS].
func holdServeCmd(args []string) error {
	if len(args) != 2 && len(args) != 3 {
		return errors.New("want NETWORK ADDRESS [COMMANDS] (tcp HOST:PORT, unix PATH, vsock PORT; COMMANDS a file or FIFO)")
	}
	if _, err := exitAfterTimeout("hold-serve", holdTimeout); err != nil {
		return err
	}
	ln, err := listen(args[0], args[1])
	if err != nil {
		return err
	}
	defer ln.Close()
	var openCmds func() (io.ReadCloser, error)
	if len(args) == 3 {
		// Opened by the server, not here: opening a FIFO waits for its
		// writer, and connections must be accepted meanwhile.
		openCmds = func() (io.ReadCloser, error) { return os.Open(args[2]) }
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	summary, err := holdServe(ln, openCmds, stop, os.Stdout, 2*time.Second)
	for _, l := range summary {
		fmt.Println(l)
	}
	return err
}

// holdServer is one hold-serve's state, shared by its goroutines.
type holdServer struct {
	mu       sync.Mutex
	out      io.Writer
	tally    *holdTally
	open     map[int]stream
	cmdsDone bool
	changed  chan struct{}
}

// holdServe accepts connections on ln and records their lines, writing
// "line conn=K seq=N" for each as it arrives (and "accepted conn=K",
// "closed conn=K", "command=... conns=C"); every line read from the
// commands (when openCmds is not nil) is sent to every open connection.
// It returns the tally's summary when stop delivers, or, with commands,
// once they have ended, at least one connection came and none is open,
// and that has lasted grace (a connection that breaks may be made again
// at once). Without commands only stop ends it: a host end whose guest is
// paused, snapshotted or restored sees its connections go and come.
func holdServe(ln listener, openCmds func() (io.ReadCloser, error), stop <-chan os.Signal, out io.Writer, grace time.Duration) ([]string, error) {
	s := &holdServer{out: out, tally: newHoldTally(), open: map[int]stream{}, changed: make(chan struct{}, 1)}
	acceptErr := make(chan error, 1)
	go func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			noKeepAlive(c)
			s.accepted(n, c)
			go s.read(n, c)
		}
	}()
	if openCmds != nil {
		go s.commands(openCmds)
	}
	for {
		select {
		case err := <-acceptErr:
			return s.summary(), fmt.Errorf("accept: %w", err)
		case sig := <-stop:
			s.mu.Lock()
			fmt.Fprintf(s.out, "stopped-by=%v\n", sig)
			s.mu.Unlock()
			return s.summary(), nil
		case <-s.changed:
		}
		if openCmds != nil && s.finished() {
			time.Sleep(grace)
			if s.finished() {
				return s.summary(), nil
			}
		}
	}
}

func (s *holdServer) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *holdServer) finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tally.connections > 0 && len(s.open) == 0 && s.cmdsDone
}

func (s *holdServer) summary() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tally.summary()
}

func (s *holdServer) accepted(n int, c stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tally.accepted(n)
	s.open[n] = c
	fmt.Fprintf(s.out, "accepted conn=%d\n", n)
}

// read records connection n's lines until it ends.
func (s *holdServer) read(n int, c stream) {
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		s.mu.Lock()
		if seq, ok := s.tally.add(n, sc.Text()); ok {
			fmt.Fprintf(s.out, "line conn=%d seq=%d\n", n, seq)
		} else {
			fmt.Fprintf(s.out, "bad-line conn=%d %q\n", n, sc.Text())
		}
		s.mu.Unlock()
	}
	c.Close()
	s.mu.Lock()
	delete(s.open, n)
	s.tally.closed()
	why := "eof"
	if err := sc.Err(); err != nil {
		why = err.Error()
	}
	fmt.Fprintf(s.out, "closed conn=%d %s\n", n, why)
	s.mu.Unlock()
	s.notify()
}

// commands sends every command line to every open connection.
func (s *holdServer) commands(openCmds func() (io.ReadCloser, error)) {
	defer s.notify()
	r, err := openCmds()
	if err != nil {
		s.mu.Lock()
		fmt.Fprintf(s.out, "commands-error=%v\n", err)
		s.cmdsDone = true
		s.mu.Unlock()
		return
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s.mu.Lock()
		sentTo := 0
		for _, c := range s.open {
			if _, err := io.WriteString(c, sc.Text()+"\n"); err == nil {
				sentTo++
			}
		}
		fmt.Fprintf(s.out, "command=%s conns=%d\n", sc.Text(), sentTo)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.cmdsDone = true
	s.mu.Unlock()
}
