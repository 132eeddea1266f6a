package fcapi

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ternvm/tern/vmm"
)

// How Firecracker's two snapshot files map onto tern's snapshot, which is
// a directory holding vmm.SnapshotStateFile and vmm.SnapshotMemoryFile:
//
//   - PUT /snapshot/create has vmm write its directory in a fresh
//     directory beside snapshot_path, then renames the state file to
//     snapshot_path and the memory file to mem_file_path (copying it
//     when mem_file_path is on another filesystem), and removes the
//     directory. The two files are tern's formats, not Firecracker's.
//   - PUT /snapshot/load makes a temporary directory holding symbolic
//     links under tern's names to snapshot_path and the memory file, and
//     restores from it; the links go once the memory is mapped.
//
// A Diff snapshot's memory file holds only the pages written since the
// previous snapshot, in tern's diff layout; tern loads only full
// snapshots (tern snapshot merge applies a diff onto its full snapshot).

func (s *Server) createSnapshot(body []byte) error {
	var req SnapshotCreate
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm == nil {
		return errPostBootOnly
	}
	began := time.Now()
	if req.SnapshotPath == "" || req.MemFilePath == "" {
		return faultf("snapshot/create needs snapshot_path and mem_file_path")
	}
	diff := false
	switch req.SnapshotType {
	case "", "Full":
	case "Diff":
		diff = true
	default:
		return faultf("snapshot_type %q: want \"Full\" or \"Diff\"", req.SnapshotType)
	}
	if s.unstarted {
		// vmm snapshots a VM that ran and paused; a loaded snapshot that
		// never resumed is started and paused at once.
		if err := s.vm.Start(); err != nil {
			return faultf("%v", err)
		}
		s.unstarted = false
		if err := s.vm.Pause(); err != nil {
			return faultf("%v", err)
		}
	}
	if s.vm.State() != vmm.StatePaused {
		return faultf("cannot create a snapshot: the microVM is not paused (PATCH /vm {\"state\": \"Paused\"} first)")
	}
	tmp, err := os.MkdirTemp(filepath.Dir(req.SnapshotPath), ".tern-snapshot-")
	if err != nil {
		return faultf("snapshot_path: %v", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := s.vm.Snapshot(vmm.SnapshotOptions{Dir: tmp, Diff: diff}); err != nil {
		return faultf("cannot create a snapshot: %v", err)
	}
	if err := moveFile(filepath.Join(tmp, vmm.SnapshotMemoryFile), req.MemFilePath); err != nil {
		return faultf("mem_file_path: %v", err)
	}
	if err := moveFile(filepath.Join(tmp, vmm.SnapshotStateFile), req.SnapshotPath); err != nil {
		return faultf("snapshot_path: %v", err)
	}
	if diff {
		s.lat.record("diff_create_snapshot", began)
	} else {
		s.lat.record("full_create_snapshot", began)
	}
	return nil
}

// moveFile renames from to to, or copies it where the two are on
// different filesystems.
func moveFile(from, to string) error {
	err := os.Rename(from, to)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	// A link planted at to is not written through.
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	// Plain reads and writes: io.Copy between files would reach for
	// copy_file_range or sendfile, which tern's seccomp filter refuses
	// once the guest runs.
	if _, err := io.Copy(struct{ io.Writer }{out}, struct{ io.Reader }{in}); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (s *Server) loadSnapshot(body []byte) error {
	var req SnapshotLoad
	if err := decode(body, &req); err != nil {
		return err
	}
	if s.vm != nil {
		return errPreBootOnly
	}
	if s.cfg.bootSpecific {
		return faultf("loading a snapshot is not allowed after configuring boot-specific resources")
	}
	began := time.Now()
	if req.SnapshotPath == "" {
		return faultf("snapshot/load needs snapshot_path")
	}
	mem := req.MemFilePath
	switch {
	case req.MemBackend != nil && mem != "":
		return faultf("give mem_backend or mem_file_path, not both")
	case req.MemBackend != nil:
		switch req.MemBackend.BackendType {
		case "File":
			mem = req.MemBackend.BackendPath
		case "Uffd":
			return notImplemented("the userfaultfd memory backend (backend_type \"Uffd\")")
		default:
			return faultf("backend_type %q: want \"File\"", req.MemBackend.BackendType)
		}
	}
	if mem == "" {
		return faultf("snapshot/load needs mem_backend or mem_file_path")
	}
	if req.ClockRealtime {
		return notImplemented("clock_realtime (tern advances the guest's clock by the time since the snapshot in any case)")
	}
	dir, err := linkSnapshot(req.SnapshotPath, mem)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := vmm.RestoreOptions{
		Dir: dir, TrackDirtyPages: req.TrackDirtyPages || req.EnableDiffSnapshots,
		// As Firecracker, a load uses the disks the snapshot names; the
		// TAPs and the vsock socket can be overridden.
		TrustSnapshotPaths: true,
		Console:            s.opts.Console, ConsoleInput: s.opts.ConsoleInput,
		KVMPath: s.opts.KVMPath, HostCacheDir: s.opts.HostCacheDir, Logger: s.opts.Logger, Started: s.opts.Started,
		BeforeRun: s.opts.BeforeRun,
		// The service's configuration comes with the snapshot; the
		// document is this server's store, as Firecracker keeps it.
		MMDSStore: s.opts.MMDS,
	}
	if s.cfg.serialFile != nil {
		opts.Console = s.cfg.serialFile
	}
	if req.VsockOverride != nil {
		if req.VsockOverride.UDSPath == "" {
			return faultf("vsock_override needs uds_path")
		}
		opts.VsockSocket = req.VsockOverride.UDSPath
	}
	if len(req.NetworkOverrides) > 0 {
		if opts.TAPs, err = s.tapOverrides(dir, req.NetworkOverrides); err != nil {
			return err
		}
	}
	vm, err := vmm.Restore(opts)
	if err != nil {
		return faultf("cannot load the snapshot: %v", err)
	}
	if req.ResumeVM {
		if err := vm.Start(); err != nil {
			vm.Close()
			return faultf("cannot resume the loaded snapshot: %v", err)
		}
	}
	s.vm, s.unstarted = vm, !req.ResumeVM
	s.lat.record("load_snapshot", began)
	s.onStart()
	return nil
}

// linkSnapshot makes a directory in which the two files carry tern's names.
func linkSnapshot(state, mem string) (string, error) {
	for what, p := range map[string]string{"snapshot_path": state, "memory file": mem} {
		if st, err := os.Stat(p); err != nil {
			return "", faultf("%s: %v", what, err)
		} else if !st.Mode().IsRegular() {
			return "", faultf("%s: %s is not a regular file", what, p)
		}
	}
	dir, err := os.MkdirTemp("", "tern-snapshot-load-")
	if err != nil {
		return "", faultf("%v", err)
	}
	for name, p := range map[string]string{vmm.SnapshotStateFile: state, vmm.SnapshotMemoryFile: mem} {
		abs, err := filepath.Abs(p)
		if err == nil {
			err = os.Symlink(abs, filepath.Join(dir, name))
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", faultf("%v", err)
		}
	}
	return dir, nil
}

// tapOverrides maps network_overrides onto the TAPs the snapshot names.
// tern's snapshot records each interface's TAP, not Firecracker's
// iface_id, so an iface_id is matched as the TAP's old name, as netN (the
// Nth interface), or, for a snapshot with one interface, as that one.
func (s *Server) tapOverrides(dir string, ovs []NetworkOverride) (map[string]string, error) {
	resources, err := vmm.SnapshotResources(dir)
	if err != nil {
		return nil, faultf("network_overrides: cannot read the snapshot's interfaces: %v", err)
	}
	var taps []string
	for _, r := range resources {
		if r.Kind == vmm.ResourceTAP {
			taps = append(taps, r.Name)
		}
	}
	out := map[string]string{}
	for _, o := range ovs {
		if o.IfaceID == "" || o.HostDevName == "" {
			return nil, faultf("network_overrides: each needs iface_id and host_dev_name")
		}
		old := ""
		for i, t := range taps {
			if t == o.IfaceID || fmt.Sprintf("net%d", i) == o.IfaceID {
				old = t
			}
		}
		if old == "" && len(taps) == 1 && len(ovs) == 1 {
			old = taps[0]
		}
		if old == "" {
			return nil, faultf("network_overrides: iface_id %q matches none of the snapshot's interfaces (TAPs %s; name one by its TAP or as netN)", o.IfaceID, strings.Join(taps, ", "))
		}
		if _, dup := out[old]; dup {
			return nil, faultf("network_overrides: interface %s is overridden twice", old)
		}
		out[old] = o.HostDevName
	}
	return out, nil
}
