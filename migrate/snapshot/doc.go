// Package snapshot reads and writes tern's snapshot files: the state file
// (magic, format version, named sections, SHA-256 trailer) and the guest
// memory file (RAM regions back to back, zero pages left as holes), plus
// diff memory files and their merge. ../FORMAT.md documents both. A state
// file may come from anywhere, so reading one checks everything, bounds
// every allocation by the file's real size, and returns nothing unless the
// whole file is sound.
package snapshot
