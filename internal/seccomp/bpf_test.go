package seccomp_test

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Kernel values, from include/uapi/linux/seccomp.h and audit.h, written
// out here rather than taken from the code under test.
const (
	retKillProcess = 0x80000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
	retActionFull  = 0xffff0000

	auditArchX86_64 = 0xc000003e
	auditArchI386   = 0x40000003
	x32SyscallBit   = 0x40000000
)

// seccompData mirrors struct seccomp_data, what a filter reads.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], uint32(d.nr))
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

func call(nr uintptr, args ...uint64) seccompData {
	d := seccompData{nr: int32(nr), arch: auditArchX86_64}
	copy(d.args[:], args)
	return d
}

// Classic BPF opcodes a seccomp filter may use (linux/bpf_common.h).
const (
	opLdAbsW = 0x20 // BPF_LD | BPF_W | BPF_ABS
	opJa     = 0x05 // BPF_JMP | BPF_JA
	opJeqK   = 0x15
	opJgtK   = 0x25
	opJgeK   = 0x35
	opJsetK  = 0x45
	opRetK   = 0x06
)

// run interprets prog on d as the kernel's seccomp does, for the
// instructions the filter is built from; any other instruction, a load
// outside seccomp_data or a jump out of the program is an error.
func run(prog []unix.SockFilter, d seccompData) (uint32, error) {
	data := d.bytes()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case opLdAbsW:
			if in.K%4 != 0 || int(in.K)+4 > len(data) {
				return 0, fmt.Errorf("pc %d: load at %d", pc, in.K)
			}
			a = binary.LittleEndian.Uint32(data[in.K:])
		case opJa:
			pc += int(in.K)
		case opJeqK, opJgtK, opJgeK, opJsetK:
			var ok bool
			switch in.Code {
			case opJeqK:
				ok = a == in.K
			case opJgtK:
				ok = a > in.K
			case opJgeK:
				ok = a >= in.K
			case opJsetK:
				ok = a&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case opRetK:
			return in.K, nil
		default:
			return 0, fmt.Errorf("pc %d: opcode %#x not expected in this filter", pc, in.Code)
		}
		if pc+1 > len(prog) {
			return 0, fmt.Errorf("pc %d: jump past the end", pc)
		}
	}
	return 0, fmt.Errorf("ran off the end of the program")
}
