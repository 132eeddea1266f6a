package boot

import (
	"strings"
	"testing"
)

func TestCmdlineBuilds(t *testing.T) {
	c := NewCmdline(2048)
	for _, p := range []string{"console=ttyS0", "reboot=k", "panic=1"} {
		if err := c.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.AddKV("root", "/dev/vda"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddKV("dyndbg", "file foo.c +p"); err != nil {
		t.Fatal(err)
	}
	want := `console=ttyS0 reboot=k panic=1 root=/dev/vda dyndbg="file foo.c +p"`
	if c.String() != want {
		t.Errorf("got %q, want %q", c.String(), want)
	}
}

func TestCmdlineRejects(t *testing.T) {
	c := NewCmdline(64)
	for _, p := range []string{"", "   ", "a\x00b"} {
		if err := c.Add(p); err == nil {
			t.Errorf("Add(%q) accepted", p)
		}
	}
	for _, kv := range [][2]string{{"", "v"}, {"a b", "v"}, {"a=b", "v"}, {"k", `say "hi"`}, {"k", "a\x00"}} {
		if err := c.AddKV(kv[0], kv[1]); err == nil {
			t.Errorf("AddKV(%q, %q) accepted", kv[0], kv[1])
		}
	}
	if c.String() != "" {
		t.Errorf("rejected parameters left %q behind", c.String())
	}
}

func TestCmdlineCapacityCountsTheNUL(t *testing.T) {
	c := NewCmdline(10)
	if err := c.Add("abcd"); err != nil { // 4 + NUL
		t.Fatal(err)
	}
	if err := c.Add("efgh"); err != nil { // "abcd efgh" 9 + NUL = 10
		t.Fatal(err)
	}
	if err := c.Add("i"); err == nil {
		t.Error("a parameter past the capacity was accepted")
	}
	if c.String() != "abcd efgh" {
		t.Errorf("got %q", c.String())
	}
}

func TestWriteCmdline(t *testing.T) {
	mem := newFakeMem(1 << 20)
	mem.fill = 0xff
	if err := WriteCmdline(mem, "console=ttyS0", 2048); err != nil {
		t.Fatal(err)
	}
	if got := string(mem.bytes(t, 0x20000, 14)); got != "console=ttyS0\x00" {
		t.Errorf("at 0x20000: %q", got)
	}
	if err := WriteCmdline(mem, strings.Repeat("x", 9), 10); err != nil {
		t.Errorf("9 bytes + NUL in 10: %v", err)
	}
	if err := WriteCmdline(mem, strings.Repeat("x", 10), 10); err == nil {
		t.Error("10 bytes + NUL accepted with max 10")
	}
	if err := WriteCmdline(mem, strings.Repeat("x", 0x10000), 0x20000); err == nil {
		t.Error("a command line larger than the 64 KiB area was accepted")
	}
	if err := WriteCmdline(mem, "a\x00b", 100); err == nil {
		t.Error("an embedded NUL was accepted")
	}
}
