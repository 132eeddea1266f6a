package block

import (
	"errors"
	"os"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	path, _ := image(t, 12)
	d, err := New(Config{Path: path, ReadOnly: true, ID: "vol-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st := d.State()
	want := State{Path: path, ReadOnly: true, ID: "vol-1", Capacity: 12}
	if st != want {
		t.Fatalf("State() = %+v, want %+v", st, want)
	}
	if err := d.SetState(st); err != nil {
		t.Errorf("SetState of its own state: %v", err)
	}
	r, err := Restore(st)
	if err != nil {
		t.Fatalf("Restore(%+v): %v", st, err)
	}
	if r.State() != want {
		t.Errorf("restored state %+v, want %+v", r.State(), want)
	}
	r.Close()
}

func TestSetStateRefusesAnotherDisk(t *testing.T) {
	path, _ := image(t, 12)
	d, err := New(Config{Path: path, ID: "vol-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	good := d.State()
	bad := map[string]State{
		"capacity":  {Path: path, ID: "vol-1", Capacity: 13},
		"read-only": {Path: path, ReadOnly: true, ID: "vol-1", Capacity: 12},
		"serial":    {Path: path, ID: "vol-2", Capacity: 12},
		"path":      {Path: path + ".other", ID: "vol-1", Capacity: 12},
	}
	for name, st := range bad {
		if err := d.SetState(st); !errors.Is(err, ErrStateMismatch) {
			t.Errorf("SetState with another %s: error %v, want ErrStateMismatch", name, err)
		}
	}
	if err := d.SetState(good); err != nil {
		t.Errorf("SetState(%+v): %v", good, err)
	}
}

// A snapshot taken of a 12-sector disk must not be restored onto an image
// that has since grown.
func TestRestoreNoticesResizedImage(t *testing.T) {
	path, _ := image(t, 12)
	st := State{Path: path, Capacity: 12}
	if err := os.Truncate(path, 16*specSector); err != nil {
		t.Fatal(err)
	}
	if d, err := Restore(st); !errors.Is(err, ErrStateMismatch) {
		if err == nil {
			d.Close()
		}
		t.Fatalf("Restore onto a resized image: error %v, want ErrStateMismatch", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(st); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("Restore of a removed image: error %v, want ErrBadConfig", err)
	}
}
