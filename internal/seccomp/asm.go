package seccomp

import (
	"cmp"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// The filter is classic BPF over struct seccomp_data. Its shape keeps
// every jump short and forward and never compares a syscall number
// against anything but the number: each syscall's block ends in a return,
// so the accumulator is reloaded only where an argument is read.
//
//	ld arch;  jeq X86_64 ? next : kill
//	ld nr;    jge X32_BIT ? kill : next
//	jeq FIRST ? its block : skip it   (the first rule's syscall: ioctl)
//	binary search on the other numbers: jge MID ? right half : left half
//	    leaf: jeq NR ? its block (or the leaf's allow) : next; deny;
//	    the blocks; allow
//	    block: per alternative (any one suffices) each argument test
//	    (all must hold), then allow; after the last alternative,
//	    deny. Alternatives that each want one argument equal to a
//	    value (ioctl's requests) test its upper half once and its
//	    lower half against each value.

// Kernel constants (include/uapi/linux/seccomp.h, audit.h, filter.h).
const (
	retKillProcess = 0x80000000 // SECCOMP_RET_KILL_PROCESS
	retTrap        = 0x00030000 // SECCOMP_RET_TRAP
	retLog         = 0x7ffc0000 // SECCOMP_RET_LOG
	retAllow       = 0x7fff0000 // SECCOMP_RET_ALLOW

	auditArchX86_64 = 0xc000003e // AUDIT_ARCH_X86_64
	x32SyscallBit   = 0x40000000 // __X32_SYSCALL_BIT

	offNr   = 0  // seccomp_data.nr
	offArch = 4  // seccomp_data.arch
	offArgs = 16 // seccomp_data.args[0], u64 each, little-endian here

	bpfMaxInstructions = 4096 // BPF_MAXINSNS
)

// op is how an argument is compared with a value.
type op int

const (
	opEqual      op = iota // arg == value (all 64 bits)
	opBitsNotSet           // arg & value == 0
)

// cond is one test of a syscall argument.
type cond struct {
	arg   int
	op    op
	value uint64
}

// sysRule allows a syscall, with no conditions whatever its arguments,
// else when every one of conds holds. Rules for one syscall are
// alternatives.
type sysRule struct {
	nr    uintptr
	conds []cond
}

func allow(nrs ...uintptr) []sysRule {
	var rs []sysRule
	for _, nr := range nrs {
		rs = append(rs, sysRule{nr: nr})
	}
	return rs
}

func allowIf(nr uintptr, conds ...cond) sysRule { return sysRule{nr: nr, conds: conds} }

func eq(arg int, v uint64) cond        { return cond{arg: arg, op: opEqual, value: v} }
func bitsClear(arg int, v uint64) cond { return cond{arg: arg, op: opBitsNotSet, value: v} }

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

const (
	ldAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	jsetK  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	retK   = unix.BPF_RET | unix.BPF_K
)

// assemble builds the program: rules in order (the first syscall is
// tested first), deny for anything else on x86-64, and kill for another
// architecture's calls and x32's, which Go code never makes.
func assemble(rules []sysRule, deny uint32) ([]unix.SockFilter, error) {
	prog := []unix.SockFilter{
		stmt(ldAbsW, offArch),
		jump(jeqK, auditArchX86_64, 1, 0),
		stmt(retK, retKillProcess),
		stmt(ldAbsW, offNr),
		jump(jgeK, x32SyscallBit, 0, 1),
		stmt(retK, retKillProcess),
	}
	var order []uintptr
	alts := map[uintptr][][]cond{}
	for _, r := range rules {
		prev, seen := alts[r.nr]
		if !seen {
			order = append(order, r.nr)
		} else if len(r.conds) == 0 || len(prev[0]) == 0 {
			return nil, fmt.Errorf("seccomp: syscall %d is listed twice, once without conditions", r.nr)
		}
		alts[r.nr] = append(prev, r.conds)
	}
	// The first syscall listed (ioctl: KVM_RUN at every guest exit) is
	// tested first; the others are found by a binary search on their
	// numbers. When a filter is installed the kernel runs it once for
	// every syscall number (to find those it may allow without running
	// it again), so its load time grows with the compares a number
	// passes: here about 1.1 us per compare in a linear chain, 115 us
	// for tern's 75 syscalls in a row against about 45 us for a filter
	// of a few.
	var entries []dispatchEntry
	for _, nr := range order {
		block, err := syscallBlock(alts[nr], deny)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscall %d: %w", nr, err)
		}
		entries = append(entries, dispatchEntry{nr: nr, block: block})
	}
	if len(entries) > 0 {
		first := entries[0]
		if len(first.block) > 255 {
			return nil, fmt.Errorf("seccomp: syscall %d: %d instructions of conditions are too many to jump over", first.nr, len(first.block))
		}
		prog = append(prog, jump(jeqK, uint32(first.nr), 0, uint8(len(first.block))))
		prog = append(prog, first.block...)
		rest := slices.Clone(entries[1:])
		slices.SortFunc(rest, func(a, b dispatchEntry) int { return cmp.Compare(a.nr, b.nr) })
		tree, err := dispatchTree(rest, deny)
		if err != nil {
			return nil, err
		}
		prog = append(prog, tree...)
	} else {
		prog = append(prog, stmt(retK, deny))
	}
	if len(prog) > bpfMaxInstructions {
		return nil, fmt.Errorf("seccomp: the filter has %d instructions, the kernel takes %d", len(prog), bpfMaxInstructions)
	}
	return prog, nil
}

// dispatchEntry is one syscall number and the code run once it matched.
type dispatchEntry struct {
	nr    uintptr
	block []unix.SockFilter
}

// leafEntries is how many syscalls a leaf of the search tests one after
// another.
const leafEntries = 4

// dispatchTree is a binary search over entries, sorted by number, with the
// syscall number in the accumulator: each node sends numbers at or above
// its middle entry's to its right half; a leaf tests each of its numbers
// and denies the rest. Every path ends in a return.
func dispatchTree(entries []dispatchEntry, deny uint32) ([]unix.SockFilter, error) {
	if len(entries) <= leafEntries {
		return dispatchLeaf(entries, deny)
	}
	mid := len(entries) / 2
	left, err := dispatchTree(entries[:mid], deny)
	if err != nil {
		return nil, err
	}
	right, err := dispatchTree(entries[mid:], deny)
	if err != nil {
		return nil, err
	}
	if len(left) > 255 {
		return nil, fmt.Errorf("seccomp: %d instructions below syscall %d are too many to jump over", len(left), entries[mid].nr)
	}
	code := []unix.SockFilter{jump(jgeK, uint32(entries[mid].nr), uint8(len(left)), 0)}
	return append(append(code, left...), right...), nil
}

// dispatchLeaf tests each entry's number, jumping to its code; a syscall
// allowed whatever its arguments jumps to the leaf's one allow.
func dispatchLeaf(entries []dispatchEntry, deny uint32) ([]unix.SockFilter, error) {
	// Layout: the tests, deny, each conditional entry's block, allow.
	var blocks []unix.SockFilter
	starts := make([]int, len(entries)) // offset in blocks, or -1 for the shared allow
	for i, e := range entries {
		if len(e.block) == 1 && e.block[0] == stmt(retK, retAllow) {
			starts[i] = -1
			continue
		}
		starts[i] = len(blocks)
		blocks = append(blocks, e.block...)
	}
	allowAt := len(blocks)
	var code []unix.SockFilter
	for i, e := range entries {
		target := allowAt
		if starts[i] >= 0 {
			target = starts[i]
		}
		// From the instruction after this test: the remaining tests,
		// the deny, then target within the blocks.
		off := len(entries) - 1 - i + 1 + target
		if off > 255 {
			return nil, fmt.Errorf("seccomp: syscall %d: its code is too far to jump to", e.nr)
		}
		code = append(code, jump(jeqK, uint32(e.nr), uint8(off), 0))
	}
	code = append(code, stmt(retK, deny))
	code = append(code, blocks...)
	return append(code, stmt(retK, retAllow)), nil
}

// syscallBlock is the code run once the syscall number matched: it ends
// in a return on every path.
func syscallBlock(alts [][]cond, deny uint32) ([]unix.SockFilter, error) {
	if len(alts) == 1 && len(alts[0]) == 0 {
		return []unix.SockFilter{stmt(retK, retAllow)}, nil
	}
	if block, ok := valueSetBlock(alts, deny); ok {
		return block, nil
	}
	var block []unix.SockFilter
	for _, conds := range alts {
		// Each test jumps, on failure, past the rest of this
		// alternative: 4 instructions per remaining test and the
		// final allow.
		for i, c := range conds {
			if c.arg < 0 || c.arg > 5 {
				return nil, fmt.Errorf("argument %d does not exist", c.arg)
			}
			fail := 4*(len(conds)-i-1) + 1 // from the last jump of this test
			lo, hi := uint32(c.value), uint32(c.value>>32)
			offLo := uint32(offArgs + 8*c.arg)
			switch c.op {
			case opEqual:
				block = append(block,
					stmt(ldAbsW, offLo+4), jump(jeqK, hi, 0, uint8(fail+2)),
					stmt(ldAbsW, offLo), jump(jeqK, lo, 0, uint8(fail)))
			case opBitsNotSet:
				block = append(block,
					stmt(ldAbsW, offLo+4), jump(jsetK, hi, uint8(fail+2), 0),
					stmt(ldAbsW, offLo), jump(jsetK, lo, uint8(fail), 0))
			default:
				return nil, fmt.Errorf("unknown comparison %d", c.op)
			}
			if fail+2 > 255 {
				return nil, fmt.Errorf("%d conditions in one alternative are too many", len(conds))
			}
		}
		block = append(block, stmt(retK, retAllow))
	}
	return append(block, stmt(retK, deny)), nil
}

// valueSetBlock is the short form of a block whose alternatives each ask
// one argument to equal a value, the same argument with the same upper
// half (ioctl's requests, socket's families): the upper half is tested
// once, then the lower half against each value, every match jumping to
// one allow.
func valueSetBlock(alts [][]cond, deny uint32) ([]unix.SockFilter, bool) {
	if len(alts) < 2 || len(alts)+1 > 255 {
		return nil, false
	}
	first := alts[0]
	for _, conds := range alts {
		if len(conds) != 1 || conds[0].op != opEqual || conds[0].arg != first[0].arg ||
			conds[0].value>>32 != first[0].value>>32 || conds[0].arg < 0 || conds[0].arg > 5 {
			return nil, false
		}
	}
	n := len(alts)
	offLo := uint32(offArgs + 8*first[0].arg)
	block := []unix.SockFilter{
		stmt(ldAbsW, offLo+4), jump(jeqK, uint32(first[0].value>>32), 0, uint8(1+n)),
		stmt(ldAbsW, offLo),
	}
	for i, conds := range alts {
		block = append(block, jump(jeqK, uint32(conds[0].value), uint8(n-i), 0))
	}
	return append(block, stmt(retK, deny), stmt(retK, retAllow)), true
}
