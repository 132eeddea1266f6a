package vmm_test

// These examples need a kernel and /dev/kvm, so they have no Output
// comment: go test compiles them but does not run them.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"time"

	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/vmm"
)

// A VM's whole life: build it, start it, hear its events, and wait for
// its end.
func Example() {
	v, err := vmm.New(vmm.Config{
		KernelPath:  "/var/lib/vms/vmlinux",
		Cmdline:     "console=ttyS0 reboot=k panic=1",
		CPUs:        2,
		MemoryBytes: 512 << 20,
		Disks:       []vmm.DiskConfig{{Config: block.Config{Path: "/var/lib/vms/rootfs.ext4"}, Root: true}},
		Console:     os.Stdout,
		// OnEvent runs on a goroutine of its own, in order; it may
		// block or call v's methods without holding up the guest.
		OnEvent: func(e vmm.Event) { log.Printf("vm: %v", e) },
	})
	if errors.Is(err, fs.ErrNotExist) {
		log.Fatalf("a file is missing: %v", err)
	} else if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	if err := v.Start(); err != nil { // returns once the guest runs
		log.Fatal(err)
	}
	reason, err := v.Wait(context.Background()) // cancel the context to stop it
	fmt.Println(reason, err, v.State())
}

// Pause a running VM, snapshot it to a directory, and let it run on.
func ExampleVM_Snapshot() {
	var v *vmm.VM // a started VM
	if err := v.Pause(); err != nil {
		log.Fatal(err)
	}
	res, err := v.Snapshot(vmm.SnapshotOptions{Dir: "/var/lib/vms/snap"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes of state, %d of memory in %v\n", res.StateBytes, res.Memory.StoredBytes, res.Took)
	if err := v.Resume(); err != nil {
		log.Fatal(err)
	}
}

// Restore a snapshot and run the guest from where it was paused. The
// snapshot package's sentinels reach the caller.
func ExampleRestore() {
	v, err := vmm.Restore(vmm.RestoreOptions{
		Dir: "/var/lib/vms/snap",
		// Paths a snapshot names are used only once confirmed.
		DiskPaths: map[string]string{"/var/lib/vms/rootfs.ext4": "/var/lib/vms/rootfs.ext4"},
		Console:   os.Stdout,
	})
	var unconfirmed *vmm.UnconfirmedError
	switch {
	case errors.Is(err, snapshot.ErrChecksum):
		log.Fatal("the snapshot is corrupt")
	case errors.As(err, &unconfirmed):
		log.Fatalf("confirm these paths first: %v", unconfirmed)
	case err != nil:
		log.Fatal(err)
	}
	defer v.Close()
	reason, err := v.Run(context.Background())
	fmt.Println(reason, err)
}

// Live-migrate a running VM over a connection the caller made (here
// plain TCP; migrate/transport dials with TLS). Once Migrate returns nil
// the destination runs the guest and Wait here returns StopMigrated.
func ExampleVM_Migrate() {
	var v *vmm.VM // a started VM
	conn, err := net.Dial("tcp", "dest.example:7000")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	st, err := v.Migrate(context.Background(), conn, migrate.SendOptions{
		Downtime: 50 * time.Millisecond,
		Progress: func(s migrate.Status) { log.Printf("migration: %s, %d bytes left", s.Phase, s.RemainingBytes) },
	})
	if err != nil {
		log.Fatalf("migration failed (%v); the guest runs on here", err)
	}
	fmt.Printf("downtime %.1f ms\n", st.DowntimeMS)
}

// Receive a migrating guest on a listener and run it.
func ExampleReceive() {
	ln, err := net.Listen("tcp", ":7000")
	if err != nil {
		log.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	v, err := vmm.Receive(context.Background(), conn, vmm.ReceiveOptions{TrustSourcePaths: true, Console: os.Stdout})
	conn.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	reason, err := v.Wait(context.Background()) // Receive started it
	fmt.Println(reason, err)
}

// Snapshot a paused VM into one stream (here a file; a pipe, a socket or
// an upload work as well), and restore it from the stream elsewhere. The
// disk the snapshot names must be confirmed, as for Restore.
func ExampleVM_SnapshotTo() {
	var v *vmm.VM // a started VM
	if err := v.Pause(); err != nil {
		log.Fatal(err)
	}
	out, err := os.Create("/var/lib/vms/snap.tern")
	if err != nil {
		log.Fatal(err)
	}
	res, err := v.SnapshotTo(context.Background(), out)
	if err == nil {
		err = out.Close()
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes in %v\n", res.StreamBytes, res.Took)
	v.Stop()

	in, err := os.Open("/var/lib/vms/snap.tern")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	r, err := vmm.RestoreFrom(in, vmm.RestoreOptions{
		DiskPaths: map[string]string{"/var/lib/vms/rootfs.ext4": "/var/lib/vms/rootfs.ext4"},
		Console:   os.Stdout,
	})
	if errors.Is(err, vmm.ErrBadSnapshot) {
		log.Fatalf("damaged or cut short: %v", err) // nothing was started
	} else if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if err := r.Start(); err != nil { // the guest goes on where it was paused
		log.Fatal(err)
	}
}

// Ask the guest to shut down (Ctrl+Alt+Del), give it 30 seconds, and stop
// it if it has not by then.
func ExampleVM_Shutdown() {
	var v *vmm.VM // a started VM
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.Shutdown(ctx); errors.Is(err, vmm.ErrShutdownTimeout) {
		log.Print("the guest ignored the request; it was stopped")
	} else if err != nil {
		log.Fatal(err)
	}
	reason, _ := v.Wait(context.Background())
	fmt.Println(reason)
}

// Hand tern a disk image and a TAP the caller opened with privileges tern
// does not have. tern works on duplicates: the caller may close its own
// descriptors once New returned.
func ExampleNew_filesFromTheCaller() {
	disk, err := os.OpenFile("/var/lib/vms/rootfs.ext4", os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer disk.Close()
	var tap *os.File // /dev/net/tun, attached by the caller with TUNSETIFF (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR)
	v, err := vmm.New(vmm.Config{
		KernelPath: "/var/lib/vms/vmlinux",
		Disks:      []vmm.DiskConfig{{Config: block.Config{File: disk}, Root: true}},
		Nets:       []virtionet.Config{{TAPFile: tap}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()
	reason, err := v.Run(context.Background())
	fmt.Println(reason, err)
}
