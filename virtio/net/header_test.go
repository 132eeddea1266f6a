package virtionet

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestTapOffloadsFollowGuestFeatures(t *testing.T) {
	// TUN_F_* from include/uapi/linux/if_tun.h.
	const (
		tunCsum = 0x01
		tunTSO4 = 0x02
		tunTSO6 = 0x04
		tunECN  = 0x08
	)
	for _, c := range []struct {
		acked uint64
		want  int
	}{
		{0, 0},
		{specCsum | specHostTSO4, 0}, // host-side offloads need nothing from the TAP
		{specGuestCsum, tunCsum},
		{specGuestCsum | specGuestTSO4, tunCsum | tunTSO4},
		{specGuestCsum | specGuestTSO4 | specGuestTSO6 | specGuestECN, tunCsum | tunTSO4 | tunTSO6 | tunECN},
		{specGuestTSO4 | specGuestTSO6, 0},      // TSO without checksum offload is not allowed
		{specGuestCsum | specGuestECN, tunCsum}, // ECN needs TSO
	} {
		if got := tapOffloads(c.acked); got != c.want {
			t.Errorf("tapOffloads(%#x) = %#x, want %#x", c.acked, got, c.want)
		}
	}
	if unix.TUN_F_CSUM != tunCsum || unix.TUN_F_TSO4 != tunTSO4 || unix.TUN_F_TSO6 != tunTSO6 || unix.TUN_F_TSO_ECN != tunECN {
		t.Fatal("x/sys TUN_F_* disagree with if_tun.h")
	}
}

func TestTxHeaderChecks(t *testing.T) {
	// flags: NEEDS_CSUM 1, DATA_VALID 2; gso_type: TCPV4 1, UDP 3, TCPV6 4, ECN 0x80.
	all := uint64(specCsum | specHostTSO4 | specHostTSO6 | specHostECN)
	for _, c := range []struct {
		flags, gso byte
		acked      uint64
		ok         bool
	}{
		{0, 0, 0, true},
		{1, 0, specCsum, true},
		{1, 0, 0, false}, // NEEDS_CSUM without VIRTIO_NET_F_CSUM
		{2, 0, all, false},
		{1, 1, all, true},
		{1, 1, specCsum, false}, // TSO4 not negotiated
		{1, 4, all, true},
		{1, 0x81, all, true},
		{1, 0x81, specCsum | specHostTSO4, false}, // ECN not negotiated
		{1, 3, all, false},                        // UFO not offered
		{0, 0x80, all, false},                     // ECN on a non-GSO frame
	} {
		hdr := make([]byte, specHdrLen)
		hdr[0], hdr[1] = c.flags, c.gso
		if got := txHeaderAllowed(hdr, c.acked); got != c.ok {
			t.Errorf("flags %#x gso %#x acked %#x: allowed %v, want %v", c.flags, c.gso, c.acked, got, c.ok)
		}
	}
}

func TestRxHeaderFixup(t *testing.T) {
	hdr := []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xee, 0xee}
	if !fixRxHeader(hdr, 0) || hdr[0] != 0 {
		t.Errorf("DATA_VALID without GUEST_CSUM: kept=%v flags=%#x, want kept with flags 0", true, hdr[0])
	}
	hdr[0] = 2
	if !fixRxHeader(hdr, specGuestCsum) || hdr[0] != 2 {
		t.Errorf("DATA_VALID with GUEST_CSUM: flags %#x, want 2", hdr[0])
	}
	hdr[0] = 1
	if fixRxHeader(hdr, 0) {
		t.Error("NEEDS_CSUM frame accepted for a driver without GUEST_CSUM")
	}
	hdr[0], hdr[1] = 1, 1
	if fixRxHeader(hdr, specGuestCsum) {
		t.Error("TSO4 frame accepted for a driver without GUEST_TSO4")
	}
	if !fixRxHeader(hdr, specGuestCsum|specGuestTSO4) {
		t.Error("TSO4 frame refused for a driver with GUEST_TSO4")
	}
}
