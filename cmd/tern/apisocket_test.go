package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestAPISocketIsPrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, remove, err := listenAPI(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ln.Close(); remove() }()
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if now := syscall.Umask(0); now != 0 {
		t.Errorf("umask left at %#o", now)
	}
}

func TestSecondTernDoesNotTakeALiveSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, remove, err := listenAPI(sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, _, err := listenAPI(sock); err == nil || !strings.Contains(err.Error(), "another process serves "+sock) {
		t.Fatalf("a second listen on a live socket: %v", err)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the first socket is gone: %v", err)
	}
	// Someone unlinks the path while the first still listens, and a
	// second tern binds it: the first's clean-up (run while it still
	// listens, as serveAPI's stop does) leaves the second's socket.
	os.Remove(sock)
	ln2, remove2, err := listenAPI(sock)
	if err != nil {
		t.Fatalf("listening on a freed path: %v", err)
	}
	defer ln2.Close()
	remove()
	ln.Close()
	if c, err := net.Dial("unix", sock); err != nil {
		t.Fatalf("the second socket was removed by the first tern: %v", err)
	} else {
		c.Close()
	}
	remove2()
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the second tern's clean-up left its socket")
	}
}

func TestStaleAPISocketIsReplaced(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, _, err := listenAPI(sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // a tern that died: the socket stays, nothing listens
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("closing removed the socket by path: %v", err)
	}
	ln2, remove2, err := listenAPI(sock)
	if err != nil {
		t.Fatalf("replacing a stale socket: %v", err)
	}
	remove2()
	ln2.Close()
}

func TestAPISocketNeverRemovesAnotherFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	os.WriteFile(path, []byte("x"), 0o600)
	if _, _, err := listenAPI(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a regular file: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error("the file was removed")
	}
}
