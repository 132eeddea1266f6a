package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/mmds"
)

func TestNetSpecMMDS(t *testing.T) {
	n, err := parseNet("tap=tap0,id=eth0,mmds=on")
	if err != nil || !n.MMDS || n.ID != "eth0" || n.TAP != "tap0" {
		t.Fatalf("parseNet: %+v, %v", n, err)
	}
	if _, err := parseNet("tap=tap0,mmds=maybe"); err == nil {
		t.Error("mmds=maybe accepted")
	}
}

func TestMMDSConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "md.json")
	os.WriteFile(good, []byte(`{"latest":{"meta-data":{"id":"i-1"}}}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"latest":`), 0o600)

	m, err := mmdsConfig(good, 2, []string{"net1"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 2 || len(m.Interfaces) != 1 || m.Interfaces[0] != "net1" {
		t.Errorf("config %+v", m.Config)
	}
	if v, err := m.Store.Value("/latest/meta-data/id", true); err != nil || string(v) != "i-1" {
		t.Errorf("store holds %q, %v", v, err)
	}
	if m, err := mmdsConfig("", 1, nil); m != nil || err != nil {
		t.Errorf("nothing asked: %v, %v", m, err)
	}
	for name, tc := range map[string]struct {
		path string
		nets []string
		want string
	}{
		"no data": {"", []string{"net0"}, "needs --mmds-data"},
		"no net":  {good, nil, "no --net has mmds=on"},
		"missing": {filepath.Join(dir, "nope"), []string{"net0"}, "--mmds-data"},
		"invalid": {bad, []string{"net0"}, "not valid JSON"},
	} {
		_, err := mmdsConfig(tc.path, 1, tc.nets)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
	if _, err := mmdsConfig(filepath.Join(dir, "nope"), 1, []string{"net0"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := mmdsConfig(bad, 1, []string{"net0"}); !errors.Is(err, mmds.ErrBadJSON) {
		t.Errorf("bad file: %v, want mmds.ErrBadJSON", err)
	}
}
