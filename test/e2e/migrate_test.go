package e2e_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ternvm/tern/test/pki"
)

// migrateCerts are the files pki.Generate writes that migrate.sh uses: a
// CA, a server and a client certificate it signed, and a rogue one that
// another CA signed. The scenario finds each as tls-NAME.
var migrateCerts = []string{"ca.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem", "rogue.pem", "rogue-key.pem"}

// TestMigrate: a guest with work in flight (a counter on its console and
// its virtio-blk disk, a TCP connection over a TAP in a bridge, vsock both
// ways) is live-migrated between two tern processes in one host. Six
// migrations fail first (no disk at the destination, a rogue client
// certificate, a cancel, a killed receiver, the connection cut, a byte
// changed in transit) and each leaves the guest counting on at the source;
// then one over TCP with mutual TLS succeeds:
// the destination goes on from the next counter value on the same TCP
// connection with its clock right, vsock is dialled again, and the disk
// holds every value. Only the source is listed for checkRun: it boots the
// guest and exits 0 once the guest is migrated; the destination never
// boots it.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	// The scenario migrates over 127.0.0.1 inside one host.
	if _, err := pki.Generate(dir, []string{"127.0.0.1", "localhost"}); err != nil {
		t.Fatalf("certificates for mutual TLS: %v", err)
	}
	extra := map[string][]byte{}
	for _, n := range migrateCerts {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("pki.Generate did not write %s: %v", n, err)
		}
		extra["tls-"+n] = b
	}
	runScenarioWith(t, "migrate.sh", extra, []expectedRun{{"source", "1"}})
}

// TestMigrateWithDisks: the same guest, busy rewriting its memory faster
// than the link carries it, is migrated without shared storage (migrate
// send --with-disks into an empty file at the destination) over a capped
// link: pre-copy converges by throttling the guest, the destination counts
// on, and once the guest powers off there its disk holds every counter
// value while the source's image is as the source left it. The source is
// the run that boots the guest.
func TestMigrateWithDisks(t *testing.T) {
	runScenario(t, "migrate-disks.sh", []expectedRun{{"source", "1"}})
}
