package api

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ternvm/tern/vmm"
)

// vmm's own sentinels answer 404 now that vmm no longer wraps the API's.
func TestVMMSentinelsAreNotFound(t *testing.T) {
	for _, err := range []error{vmm.ErrNoBalloon, vmm.ErrNoDevice, vmm.ErrNoMigration} {
		if status(err) != http.StatusNotFound {
			t.Errorf("%v: %d, want 404", err, status(err))
		}
	}
	if status(vmm.ErrNotPaused) != http.StatusBadRequest {
		t.Errorf("ErrNotPaused: want 400")
	}
}

func TestMigrationTarget(t *testing.T) {
	tg, err := migrationTarget(MigrationRequest{To: "unix:/m", DowntimeMS: 1.5, TimeoutMS: 2000, OnTimeout: "force", Bandwidth: 7, WithDisks: true, TLSCA: "ca", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	s := tg.Send
	if tg.To != "unix:/m" || s.Downtime != 1500*time.Microsecond || s.Timeout != 2*time.Second || !s.ForceOnTimeout || s.Bandwidth != 7 || !s.WithDisks || tg.TLS.CAFile != "ca" || !tg.Insecure {
		t.Errorf("got %+v", tg)
	}
	for _, bad := range []MigrationRequest{{DowntimeMS: -1}, {TimeoutMS: -1}, {OnTimeout: "maybe"}} {
		if _, err := migrationTarget(bad); !errors.Is(err, vmm.ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", bad, err)
		}
	}
}
