package kvm

import "fmt"

// RequestNumber returns the ioctl request number of the KVM request this
// package issues under name, the KVM API's name for it ("KVM_RUN"), for
// callers that must list the requests a process may make, such as a
// seccomp filter. A request this package never issues is an error.
func RequestNumber(name string) (uint32, error) {
	for _, r := range requests {
		if r.name == name {
			return uint32(r.num), nil
		}
	}
	return 0, fmt.Errorf("kvm: no request named %q is issued by this package", name)
}
