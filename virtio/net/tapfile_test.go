package virtionet

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// attachedTUN opens /dev/net/tun and attaches it to a new interface
// called name with flags, as a privileged caller of tern would.
func attachedTUN(t *testing.T, name string, flags uint16) *os.File {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "caller's "+name)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		t.Fatalf("TUNSETIFF %s: %v", name, err)
	}
	return f
}

// A TAP the caller attached is driven through tern's own duplicate, after
// the caller closed its descriptor; closing the device lets go of the
// TAP, which the kernel then deletes (nobody holds it any more).
func TestNewAdoptsAnAttachedTAPFile(t *testing.T) {
	enterNetns(t)
	f := attachedTUN(t, "tern-fd0", unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_VNET_HDR)
	d, err := New(Config{TAPFile: f, MAC: guestMAC})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.TAP() != "tern-fd0" {
		t.Errorf("TAP() = %q, want the attached interface tern-fd0", d.TAP())
	}
	f.Close()
	link, err := netlink.LinkByName("tern-fd0")
	if err != nil {
		t.Fatalf("the TAP went away with the caller's descriptor: %v", err)
	}
	if err := netlink.LinkSetUp(link); err != nil { // the caller's part
		t.Fatal(err)
	}
	host, _ := packetSocket(t, "tern-fd0", false)
	r := newRig(t, specVersion1)
	frame := ethFrame(peerMAC, guestMAC, 120)
	r.sendTx(append(make([]byte, specHdrLen), frame...))
	activate(t, d, r, 0)
	d.QueueNotify(TxQueue)
	r.waitUsed(r.tx, 1)
	if got := recvFrame(t, host, 0, testEtherType); !bytes.Equal(got, frame) {
		t.Errorf("host got %d bytes, want the %d-byte frame the guest sent", len(got), len(frame))
	}
	r.irq.release()
	d.Reset()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, "tern-fd0") {
		t.Error("the TAP still exists after both descriptors closed")
	}
}

func TestNewRefusesUnfitTAPFiles(t *testing.T) {
	enterNetns(t)
	plain, err := os.Create(filepath.Join(t.TempDir(), "not-a-tap"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	unattached, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unattached.Close()
	tun := attachedTUN(t, "tern-tun0", unix.IFF_TUN|unix.IFF_NO_PI|unix.IFF_VNET_HDR)
	defer tun.Close()
	noHdr := attachedTUN(t, "tern-nohdr0", unix.IFF_TAP|unix.IFF_NO_PI)
	defer noHdr.Close()
	good := attachedTUN(t, "tern-good0", unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_VNET_HDR)
	defer good.Close()
	for _, c := range []struct {
		what string
		cfg  Config
		want error
		says string
	}{
		{"a regular file", Config{TAPFile: plain}, ErrNotTAP, "not a /dev/net/tun descriptor"},
		{"an unattached /dev/net/tun", Config{TAPFile: unattached}, ErrNotTAP, "not attached"},
		{"a TUN", Config{TAPFile: tun}, ErrNotTAP, "TUN (layer 3)"},
		{"a TAP without vnet headers", Config{TAPFile: noHdr}, ErrTAPUnusable, "IFF_VNET_HDR"},
		{"another TAP's name", Config{TAPFile: good, TAP: "tern-other0"}, ErrTAPUnusable, `not "tern-other0"`},
		{"a bridge", Config{TAPFile: good, Bridge: "br0"}, ErrTAPUnusable, "bridge"},
	} {
		d, err := New(c.cfg)
		if err == nil {
			d.Close()
			t.Errorf("%s: accepted", c.what)
			continue
		}
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %v saying %q", c.what, err, c.want, c.says)
		}
	}
	// The refusals left the caller's descriptor as it was.
	d, err := New(Config{TAPFile: good, TAP: "tern-good0"})
	if err != nil {
		t.Fatalf("the good TAP after the refusals: %v", err)
	}
	d.Close()
}
