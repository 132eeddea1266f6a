package mmds

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sameJSON(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("store returned invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// The test cases of RFC 7396, Appendix A.
func TestPatchRFC7396Examples(t *testing.T) {
	for _, tc := range []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	} {
		s := NewStore(0)
		if err := s.Put([]byte(tc.target)); err != nil {
			t.Fatalf("Put %s: %v", tc.target, err)
		}
		if err := s.Patch([]byte(tc.patch)); err != nil {
			t.Fatalf("Patch %s with %s: %v", tc.target, tc.patch, err)
		}
		if got := s.Get(); !sameJSON(t, got, tc.want) {
			t.Errorf("%s patched with %s = %s, want %s", tc.target, tc.patch, got, tc.want)
		}
	}
}

func TestStoreLimit(t *testing.T) {
	s := NewStore(0)
	if s.Limit() != 51200 {
		t.Fatalf("default limit %d, want Firecracker's 51200", s.Limit())
	}
	// {"k":"xxx..."} is 8 bytes plus the string.
	fits := `{"k":"` + strings.Repeat("x", 51200-8) + `"}`
	if err := s.Put([]byte(fits)); err != nil {
		t.Fatalf("a document of exactly the limit: %v", err)
	}
	over := `{"k":"` + strings.Repeat("x", 51200-7) + `"}`
	if err := s.Put([]byte(over)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a document one byte over: %v, want ErrTooLarge", err)
	}
	if got := len(s.Get()); got != 51200 {
		t.Fatalf("a refused Put changed the document (%d bytes)", got)
	}
	// Whitespace does not count: the size is the compact document's.
	if err := s.Put([]byte("{\n  \"k\" :   \"v\"\n}\n")); err != nil {
		t.Fatal(err)
	}
	if got := string(s.Get()); got != `{"k":"v"}` {
		t.Errorf("Get = %s, want the compact form", got)
	}
	if err := s.Patch([]byte(`{"big":"` + strings.Repeat("y", 51200) + `"}`)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a patch making it too large: %v", err)
	}
	if got := string(s.Get()); got != `{"k":"v"}` {
		t.Errorf("a refused Patch changed the document to %s", got)
	}
}

func TestStoreRefusals(t *testing.T) {
	s := NewStore(100)
	if got := string(s.Get()); got != "{}" {
		t.Errorf("empty store Get = %s, want {}", got)
	}
	if err := s.Patch([]byte(`{"a":1}`)); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Patch before Put: %v, want ErrNotInitialized", err)
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `{"a":1} {"b":2}`, `nul`, strings.Repeat("[", 65) + strings.Repeat("]", 65)} {
		if err := s.Put([]byte(bad)); !errors.Is(err, ErrBadJSON) {
			t.Errorf("Put %.20q: %v, want ErrBadJSON", bad, err)
		}
	}
	// Numbers keep their text: no float rounding of large integers.
	if err := s.Put([]byte(`{"n":12345678901234567890}`)); err != nil {
		t.Fatal(err)
	}
	if got := string(s.Get()); got != `{"n":12345678901234567890}` {
		t.Errorf("Get = %s", got)
	}
}

func TestValueFormats(t *testing.T) {
	s := NewStore(0)
	doc := `{"latest":{"meta-data":{"ami-id":"ami-1","tags":{"a":"b"},"n":3,"list":["x","y"]}},"top":"v"}`
	if err := s.Put([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		imds bool
		want string
		err  error
	}{
		{"/latest/meta-data/ami-id", true, "ami-1", nil},
		{"/latest/meta-data/ami-id", false, `"ami-1"`, nil},
		{"/latest/meta-data", true, "ami-id\nlist\nn\ntags/", nil},
		{"/latest/meta-data/", true, "ami-id\nlist\nn\ntags/", nil},
		{"//latest///meta-data//tags", true, "a", nil},
		{"/", true, "latest/\ntop", nil},
		{"/latest/meta-data/n", false, "3", nil},
		{"/latest/meta-data/n", true, "", ErrUnsupportedType},
		{"/latest/meta-data/list", true, "", ErrUnsupportedType},
		{"/latest/meta-data/list/1", true, "y", nil},
		{"/latest/meta-data/list/01", true, "", ErrNotFound},
		{"/latest/meta-data/list/2", true, "", ErrNotFound},
		{"/latest/meta-data/missing", true, "", ErrNotFound},
		{"/top/deeper", true, "", ErrNotFound},
	} {
		got, err := s.Value(tc.path, tc.imds)
		if !errors.Is(err, tc.err) || (err == nil && string(got) != tc.want) {
			t.Errorf("Value(%q, imds=%v) = %q, %v; want %q, %v", tc.path, tc.imds, got, err, tc.want, tc.err)
		}
	}
}
