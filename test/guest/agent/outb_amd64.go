package main

// outb writes value to the I/O port (the OUT instruction); the process must
// hold permission for the port (ioperm), else it dies of SIGSEGV.
//
//go:noescape
func outb(port uint16, value uint8)
