package vmm

import (
	"fmt"
	"path/filepath"

	"github.com/ternvm/tern/migrate/snapshot"
)

// MergeSnapshot applies the diff snapshot in diffDir onto the full snapshot
// in baseDir, the one it follows: the diff's pages go into the base memory
// file and the diff's state file (marked full) replaces the base's. baseDir
// then holds a full snapshot of the guest as it was at the diff.
func MergeSnapshot(baseDir, diffDir string) error {
	baseState := filepath.Join(baseDir, SnapshotStateFile)
	diffState := filepath.Join(diffDir, SnapshotStateFile)
	base, err := readInfo(baseState)
	if err != nil {
		return err
	}
	diffSections, err := snapshot.ReadStateFile(diffState)
	if err != nil {
		return err
	}
	diff, err := snapshot.NewState(diffSections)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	info, err := memoryInfoOf(diff)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadSnapshot, diffDir, err)
	}
	if err := info.Validate(); err != nil {
		return fmt.Errorf("%w: %s: memory: %w", ErrBadSnapshot, diffDir, err)
	}
	switch {
	case base.Kind != "full":
		return fmt.Errorf("merge: %s is a %s snapshot; the base must be full", baseDir, base.Kind)
	case info.Kind != "diff":
		return fmt.Errorf("merge: %s is a %s snapshot, not a diff", diffDir, info.Kind)
	case info.TotalBytes() != base.TotalBytes() || len(info.Regions) != len(base.Regions):
		return fmt.Errorf("merge: %s is of a guest with %d bytes of RAM, %s of one with %d", diffDir, info.TotalBytes(), baseDir, base.TotalBytes())
	}
	// MergeDiff checks both memory files' sizes itself.
	baseMem := filepath.Join(baseDir, SnapshotMemoryFile)
	diffMem := filepath.Join(diffDir, SnapshotMemoryFile)
	if err := snapshot.MergeDiff(baseMem, diffMem, info); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	merged := snapshot.MemoryInfo{Kind: "full", PageSize: info.PageSize, Regions: info.Regions, Stats: base.Stats}
	if err := diff.PutJSON("memory", merged); err != nil {
		return err
	}
	return snapshot.WriteStateFile(baseState, diff.Sections())
}

// readInfo reads the memory section of a state file.
func readInfo(path string) (snapshot.MemoryInfo, error) {
	var info snapshot.MemoryInfo
	sections, err := snapshot.ReadStateFile(path)
	if err != nil {
		return info, err
	}
	st, err := snapshot.NewState(sections)
	if err != nil {
		return info, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	if info, err = memoryInfoOf(st); err != nil {
		return info, fmt.Errorf("%w: %s: %w", ErrBadSnapshot, path, err)
	}
	if err := info.Validate(); err != nil {
		return info, fmt.Errorf("%w: %s: memory: %w", ErrBadSnapshot, path, err)
	}
	return info, nil
}

// memoryInfoOf decodes the memory section within the bounds a guest of
// the configuration's size sets for it (its dirty bitmap).
func memoryInfoOf(st *snapshot.State) (snapshot.MemoryInfo, error) {
	var cfg snapshotConfig
	var info snapshot.MemoryInfo
	if err := st.GetJSONWithin("config", &cfg, configLimits); err != nil {
		return info, err
	}
	err := st.GetJSONWithin("memory", &info, memoryLimits(cfg.MemoryBytes))
	return info, err
}
