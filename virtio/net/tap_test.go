package virtionet

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

func linkExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	switch {
	case err == nil:
		return true
	case errors.As(err, &nf):
		return false
	}
	t.Fatalf("look up %s: %v", name, err)
	return false
}

func TestNewCreatesTAPAndCloseDeletesIt(t *testing.T) {
	enterNetns(t)
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}
	d, err := New(Config{TAP: "tern-new0", MAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByName("tern-new0")
	if err != nil {
		t.Fatalf("TAP not created: %v", err)
	}
	tt, ok := link.(*netlink.Tuntap)
	if !ok || tt.Mode != netlink.TUNTAP_MODE_TAP {
		t.Fatalf("created %s link %T, want a TAP", link.Type(), link)
	}
	if tt.Flags&netlink.TUNTAP_VNET_HDR == 0 || tt.Flags&netlink.TUNTAP_NO_PI == 0 {
		t.Errorf("TAP flags %v, want vnet_hdr and no_pi", tt.Flags)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Error("TAP is not up")
	}
	if got := d.MAC(); got.String() != mac.String() {
		t.Errorf("MAC() = %s, want %s", got, mac)
	}
	if d.TAP() != "tern-new0" {
		t.Errorf("TAP() = %q", d.TAP())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, "tern-new0") {
		t.Error("TAP created by New still exists after Close")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewUsesExistingTAPAndLeavesIt(t *testing.T) {
	enterNetns(t)
	pre := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: "tern-old0"},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_ONE_QUEUE,
	}
	if err := netlink.LinkAdd(pre); err != nil {
		t.Fatalf("create persistent TAP: %v", err)
	}
	for _, f := range pre.Fds {
		f.Close()
	}
	d, err := New(Config{TAP: "tern-old0"})
	if err != nil {
		t.Fatal(err)
	}
	if mac := d.MAC(); len(mac) != 6 || mac[0]&3 != 2 {
		t.Errorf("default MAC %s is not a locally administered unicast address", mac)
	}
	// A second user of a single-queue TAP is refused.
	if _, err := New(Config{TAP: "tern-old0"}); !errors.Is(err, ErrTAPUnusable) {
		t.Errorf("second New on the same TAP = %v, want ErrTAPUnusable", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !linkExists(t, "tern-old0") {
		t.Error("Close deleted a TAP tern did not create")
	}
}

func TestNewRefusesNonTAPInterfaces(t *testing.T) {
	enterNetns(t)
	if _, err := New(Config{TAP: "lo"}); !errors.Is(err, ErrNotTAP) {
		t.Errorf("New(lo) = %v, want ErrNotTAP", err)
	}
	tun := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "tern-tun0"}, Mode: netlink.TUNTAP_MODE_TUN}
	if err := netlink.LinkAdd(tun); err != nil {
		t.Fatalf("create TUN: %v", err)
	}
	for _, f := range tun.Fds {
		f.Close()
	}
	if _, err := New(Config{TAP: "tern-tun0"}); !errors.Is(err, ErrNotTAP) {
		t.Errorf("New(TUN device) = %v, want ErrNotTAP", err)
	}
}

func TestNewAttachesToBridge(t *testing.T) {
	enterNetns(t)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "tern-br0"}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("create bridge: %v", err)
	}
	brLink, err := netlink.LinkByName("tern-br0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{TAP: "tern-tap1", Bridge: "tern-br0"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tap, err := netlink.LinkByName("tern-tap1")
	if err != nil {
		t.Fatal(err)
	}
	if tap.Attrs().MasterIndex != brLink.Attrs().Index {
		t.Errorf("TAP master index %d, want the bridge's %d", tap.Attrs().MasterIndex, brLink.Attrs().Index)
	}
}

func TestNewBridgeErrors(t *testing.T) {
	enterNetns(t)
	if _, err := New(Config{TAP: "tern-tap2", Bridge: "no-such-br"}); !errors.Is(err, ErrNoBridge) {
		t.Errorf("missing bridge: %v, want ErrNoBridge", err)
	}
	if linkExists(t, "tern-tap2") {
		t.Error("a failed New left a TAP behind")
	}
	if _, err := New(Config{TAP: "tern-tap2", Bridge: "lo"}); !errors.Is(err, ErrNotBridge) {
		t.Errorf("lo as bridge: %v, want ErrNotBridge", err)
	}
	if _, err := New(Config{TAP: "tern-tap2", Bridge: "bad/name"}); !errors.Is(err, ErrBadName) {
		t.Errorf("bridge with a bad name: %v, want ErrBadName", err)
	}
}
