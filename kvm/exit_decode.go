package kvm

import (
	"encoding/binary"
	"fmt"
)

// runBytes reads kvm_run fields, which are in x86's little-endian order.
var runBytes = binary.LittleEndian

// decodeExit reads kvm_run.exit_reason and its union member from run, the
// vCPU's whole mapping (the I/O data of KVM_EXIT_IO lives on a later page
// of it). Slices in the result alias run.
func decodeExit(run []byte) (Exit, error) {
	if len(run) < runStructSize {
		return nil, fmt.Errorf("kvm_run mapping of %d bytes is smaller than struct kvm_run (%d)", len(run), runStructSize)
	}
	reason := ExitReason(runBytes.Uint32(run[runOffExitReason:]))
	switch reason {
	case ExitReasonIO:
		return decodeIO(run)
	case ExitReasonMMIO:
		n := runBytes.Uint32(run[runOffMMIOLen:])
		if n > mmioDataMax {
			return nil, fmt.Errorf("%s: length %d exceeds the %d-byte data field", reason, n, mmioDataMax)
		}
		return ExitMMIO{
			Addr:  runBytes.Uint64(run[runOffMMIOPhysAddr:]),
			Write: run[runOffMMIOIsWrite] != 0,
			Data:  run[runOffMMIOData : runOffMMIOData+n : runOffMMIOData+n],
		}, nil
	case ExitReasonHLT:
		return ExitHLT{}, nil
	case ExitReasonShutdown:
		return ExitShutdown{}, nil
	case ExitReasonIntr:
		return ExitInterrupted{}, nil
	case ExitReasonSystemEvent:
		n := min(int(runBytes.Uint32(run[runOffSystemEventNData:])), systemEventDataMax)
		return ExitSystemEvent{
			Type:  runBytes.Uint32(run[runOffSystemEventType:]),
			Flags: runBytes.Uint64(run[runOffSystemEventData:]),
			Data:  readUint64s(run[runOffSystemEventData:], n),
		}, nil
	case ExitReasonFailEntry:
		return ExitFailEntry{
			HardwareEntryFailureReason: runBytes.Uint64(run[runOffFailEntryReason:]),
			CPU:                        runBytes.Uint32(run[runOffFailEntryCPU:]),
		}, nil
	case ExitReasonInternalError:
		n := min(int(runBytes.Uint32(run[runOffInternalNData:])), internalDataMax)
		return ExitInternalError{
			Suberror: runBytes.Uint32(run[runOffInternalSuberror:]),
			Data:     readUint64s(run[runOffInternalData:], n),
		}, nil
	case ExitReasonDebug:
		return ExitDebug{
			Exception: runBytes.Uint32(run[runOffDebugException:]),
			PC:        runBytes.Uint64(run[runOffDebugPC:]),
			DR6:       runBytes.Uint64(run[runOffDebugDR6:]),
			DR7:       runBytes.Uint64(run[runOffDebugDR7:]),
		}, nil
	case ExitReasonIOAPICEOI:
		return ExitIOAPICEOI{Vector: run[runOffEOIVector]}, nil
	case ExitReasonUnknown:
		return ExitUnknown{Code: uint32(reason), HardwareExitReason: runBytes.Uint64(run[runOffHWExitReason:])}, nil
	default:
		return ExitUnknown{Code: uint32(reason)}, nil
	}
}

func decodeIO(run []byte) (Exit, error) {
	size := run[runOffIOSize]
	count := runBytes.Uint32(run[runOffIOCount:])
	off := runBytes.Uint64(run[runOffIODataOffset:])
	n := uint64(size) * uint64(count)
	if off > uint64(len(run)) || n > uint64(len(run))-off {
		return nil, fmt.Errorf("%s: data [%#x, +%d) lies outside the %d-byte kvm_run mapping", ExitReasonIO, off, n, len(run))
	}
	return ExitIO{
		Port:  runBytes.Uint16(run[runOffIOPort:]),
		Size:  size,
		In:    run[runOffIODirection] == exitIODirectionIn,
		Count: count,
		Data:  run[off : off+n : off+n],
	}, nil
}

func readUint64s(b []byte, n int) []uint64 {
	if n == 0 {
		return nil
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = runBytes.Uint64(b[8*i:])
	}
	return out
}
