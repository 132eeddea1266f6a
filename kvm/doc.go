// Package kvm is a typed layer over the Linux /dev/kvm ioctl interface for
// x86-64 hosts, in the spirit of rust-vmm's kvm-ioctls.
//
// It offers three handles that follow KVM's own file descriptor hierarchy:
// System (/dev/kvm), VM (from KVM_CREATE_VM) and VCPU (from
// KVM_CREATE_VCPU, with its mmap'ed kvm_run area). Kernel structures are
// mirrored by Go structs with identical memory layout, each commented with
// the C struct it mirrors, so they can be handed to the kernel directly.
// KVM_RUN exits are decoded from the kvm_run page into one Go type per exit
// reason (ExitIO, ExitMMIO, ExitHLT, ...).
//
// The package knows nothing of guests, devices or boot protocols; it only
// issues ioctls and reports kernel errors, wrapped so errors.Is works with
// the unix.Errno values the KVM API documents (for example unix.EINVAL,
// unix.E2BIG, unix.EEXIST).
//
// Every ioctl other than KVM_RUN is retried when interrupted by a signal.
// KVM_RUN is not: a signal (or immediate_exit) ending it is how a vCPU is
// kicked out of the guest, and Run reports it as ExitInterrupted.
package kvm
