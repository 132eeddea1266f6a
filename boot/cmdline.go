package boot

import (
	"fmt"
	"strings"
)

// Cmdline builds a kernel command line that is guaranteed to fit a given
// capacity. Capacity counts the terminating NUL, like CmdlineMaxSize and
// Kernel.CmdlineMax.
type Cmdline struct {
	b        strings.Builder
	capacity int
}

// NewCmdline returns an empty command line of the given capacity in bytes,
// terminating NUL included.
func NewCmdline(capacity int) *Cmdline { return &Cmdline{capacity: capacity} }

// Add appends one parameter, separated from the previous by a space. It
// rejects an empty or blank parameter, one containing NUL, and one that
// would make the line exceed the capacity.
func (c *Cmdline) Add(param string) error {
	if strings.TrimSpace(param) == "" {
		return fmt.Errorf("command line parameter %q is empty", param)
	}
	if strings.IndexByte(param, 0) >= 0 {
		return fmt.Errorf("command line parameter %q contains a NUL byte", param)
	}
	need := c.b.Len() + len(param) + 1 // + NUL
	if c.b.Len() > 0 {
		need++ // separating space
	}
	if need > c.capacity {
		return fmt.Errorf("command line parameter %q would make the command line %d bytes with its NUL, over the %d allowed", param, need, c.capacity)
	}
	if c.b.Len() > 0 {
		c.b.WriteByte(' ')
	}
	c.b.WriteString(param)
	return nil
}

// AddKV appends key=value. A value containing white space is wrapped in
// double quotes, which the kernel's parameter parser understands; a key
// must be a single word without '=' or quotes, and a value may not itself
// contain a double quote.
func (c *Cmdline) AddKV(key, value string) error {
	if key == "" || strings.ContainsAny(key, " \t\n\"=\x00") {
		return fmt.Errorf("command line key %q is empty or contains white space, '=', '\"' or NUL", key)
	}
	if strings.ContainsAny(value, "\"\x00") {
		return fmt.Errorf("command line value %q for %s contains '\"' or NUL", value, key)
	}
	if strings.ContainsAny(value, " \t\n") {
		value = `"` + value + `"`
	}
	return c.Add(key + "=" + value)
}

// String returns the command line without a terminating NUL.
func (c *Cmdline) String() string { return c.b.String() }

// WriteCmdline writes cmdline, NUL-terminated, at CmdlineAddr. max is the
// kernel's limit including the NUL (Kernel.CmdlineMax); the line must also
// fit the CmdlineMaxSize area.
func WriteCmdline(mem GuestMemory, cmdline string, max int) error {
	if strings.IndexByte(cmdline, 0) >= 0 {
		return fmt.Errorf("command line contains a NUL byte")
	}
	if len(cmdline)+1 > max {
		return fmt.Errorf("command line is %d bytes with its NUL, over the kernel's %d", len(cmdline)+1, max)
	}
	if len(cmdline)+1 > CmdlineMaxSize {
		return fmt.Errorf("command line is %d bytes with its NUL, over the %d-byte area at %#x", len(cmdline)+1, CmdlineMaxSize, CmdlineAddr)
	}
	b := make([]byte, len(cmdline)+1)
	copy(b, cmdline)
	return writeGuest(mem, CmdlineAddr, b)
}
