package main

// inb, inl and outl are the IN and OUT instructions beside outb; as for
// outb, the thread must hold permission for the port (iopl or ioperm),
// else the process dies of SIGSEGV.

//go:noescape
func inb(port uint16) uint8

//go:noescape
func inl(port uint16) uint32

//go:noescape
func outl(port uint16, value uint32)
