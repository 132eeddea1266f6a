package main

import (
	"bytes"
	"testing"
)

var termFilterCases = []struct {
	name, in, want string
}{
	{"plain text and allowed controls", "login: \tok\r\nback\bspace\n", "login: \tok\r\nback\bspace\n"},
	{"UTF-8 passes", "héllo → ✓ \u00a0nbsp", "héllo → ✓ \u00a0nbsp"},
	{"OSC 52 clipboard, BEL", "a\x1b]52;c;cm0gLXJmIH4K\x07b", "ab"},
	{"OSC 52 clipboard, ST", "a\x1b]52;c;cm0gLXJmIH4K\x1b\\b", "ab"},
	{"window title, BEL", "x\x1b]0;pwned\x07y", "xy"},
	{"window title, ST", "x\x1b]2;pwned title\x1b\\y", "xy"},
	{"CSI colour and clear", "\x1b[31mred\x1b[0m\x1b[2J\x1b[?1049h", "red"},
	{"CSI with intermediate", "a\x1b[1 qb", "ab"},
	{"DCS, APC, PM, SOS", "1\x1bPq#0;2;0;0;0\x1b\\2\x1b_apc\x1b\\3\x1b^pm\x1b\\4\x1bXsos\x1b\\5", "12345"},
	{"short escapes", "a\x1bcb\x1b7c\x1b8d\x1b(0e\x1b#8f", "abcdef"},
	{"other C0 controls", "a\x07b\x05c\x0ed\x0fe\x00f", "abcdef"},
	{"C1 controls as UTF-8", "a\u009b2Jb\u009d0;t\u009cc\u0085d", "a2Jb0;tcd"},
	{"cancelled CSI", "a\x1b[12\x18b", "ab"},
	{"ESC ends a string and starts a sequence", "a\x1b]0;t\x1b[31mb", "ab"},
	{"a lone 0xC2 waits for the next byte", "\xc2", ""},
}

func filterAll(chunks ...string) string {
	var out bytes.Buffer
	f := newTermFilter(&out)
	for _, c := range chunks {
		if n, err := f.Write([]byte(c)); n != len(c) || err != nil {
			panic("short write")
		}
	}
	return out.String()
}

func TestTermFilter(t *testing.T) {
	for _, c := range termFilterCases {
		if got := filterAll(c.in); got != c.want {
			t.Errorf("%s: %q -> %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

// Sequences split across writes at every byte, and at every single
// split point, are still removed.
func TestTermFilterSplitAtEveryByte(t *testing.T) {
	for _, c := range termFilterCases {
		var bytewise []string
		for i := 0; i < len(c.in); i++ {
			bytewise = append(bytewise, c.in[i:i+1])
		}
		if got := filterAll(bytewise...); got != c.want {
			t.Errorf("%s byte by byte: %q, want %q", c.name, got, c.want)
		}
		for i := 0; i <= len(c.in); i++ {
			if got := filterAll(c.in[:i], c.in[i:]); got != c.want {
				t.Errorf("%s split at %d: %q, want %q", c.name, i, got, c.want)
			}
		}
	}
}

func TestStdioConsoleIsFilteredUnlessRaw(t *testing.T) {
	w, _, closeFn, err := openConsole("stdio", false)
	if err != nil {
		t.Fatal(err)
	}
	closeFn()
	if _, ok := w.(*termFilter); !ok {
		t.Errorf("--console stdio writes through %T, want the terminal filter", w)
	}
	w, _, closeFn, err = openConsole("stdio", true)
	if err != nil {
		t.Fatal(err)
	}
	closeFn()
	if _, ok := w.(*termFilter); ok {
		t.Error("--console-raw still filters")
	}
}
