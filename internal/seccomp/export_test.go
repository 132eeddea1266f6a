package seccomp

// ReferenceVerdict is what tern's rules say of a call on x86-64, read
// straight from the rules rather than through the assembled program: the
// reference the program must agree with.
func ReferenceVerdict(mode Mode, pid int, nr uintptr, args [6]uint64) (uint32, error) {
	rs, err := rules(pid)
	if err != nil {
		return 0, err
	}
	deny := uint32(retTrap)
	if mode == Audit {
		deny = retLog
	}
	for _, r := range rs {
		if r.nr != nr {
			continue
		}
		holds := true
		for _, c := range r.conds {
			switch c.op {
			case opEqual:
				holds = holds && args[c.arg] == c.value
			case opBitsNotSet:
				holds = holds && args[c.arg]&c.value == 0
			}
		}
		if holds {
			return retAllow, nil
		}
	}
	return deny, nil
}

// RuleValues lists every value a rule compares an argument with, as
// (argument, value) pairs: the arguments worth trying.
func RuleValues(pid int) ([][2]uint64, error) {
	rs, err := rules(pid)
	if err != nil {
		return nil, err
	}
	var out [][2]uint64
	for _, r := range rs {
		for _, c := range r.conds {
			out = append(out, [2]uint64{uint64(c.arg), c.value})
		}
	}
	return out, nil
}
