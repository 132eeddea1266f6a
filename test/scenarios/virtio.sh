# Virtio devices over the MMIO transport, found by the stock kernel through
# the ACPI DSDT (LNRO0005) with its own modules: the guest reads entropy from
# tern's virtio-rng through /dev/hwrng.
. "$SCENARIO_DIR/lib.sh"

boot_guest rng --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M --rng \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
check "rng guest: tern exits 0 after guest poweroff" [ "$(run_rc rng)" = 0 ]
check "rng guest: the kernel's current hwrng is virtio_rng ($(guest_value rng hwrng))" \
	sh -c "case '$(guest_value rng hwrng)' in virtio_rng*) true ;; *) false ;; esac"
check "rng guest: read 4096 bytes from /dev/hwrng" [ "$(guest_value rng hwrng-bytes)" = 4096 ]
# 256 random bytes hold well over 100 distinct values (about 162 expected);
# a device that returned zeros or a repeated pattern would not.
check "rng guest: the bytes look random ($(guest_value rng hwrng-distinct) distinct values in 256)" \
	[ "$(guest_value rng hwrng-distinct)" -gt 100 ]

finish
