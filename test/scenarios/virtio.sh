# Virtio devices over the MMIO transport, found by the stock kernel through
# the ACPI DSDT (LNRO0005) with its own modules: the guest reads entropy from
# tern's virtio-rng through /dev/hwrng, and a balloon with a 64 MiB target
# takes 64 MiB out of the guest's MemTotal.
. "$SCENARIO_DIR/lib.sh"

boot_guest rng --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M --rng \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
check "rng guest: tern exits 0 after guest poweroff" powered_off rng
check "rng guest: the kernel's current hwrng is virtio_rng ($(guest_value rng hwrng))" \
	sh -c "case '$(guest_value rng hwrng)' in virtio_rng*) true ;; *) false ;; esac"
check "rng guest: read 4096 bytes from /dev/hwrng" [ "$(guest_value rng hwrng-bytes)" = 4096 ]
# 256 random bytes hold well over 100 distinct values (about 162 expected);
# a device that returned zeros or a repeated pattern would not.
check "rng guest: the bytes look random ($(guest_value rng hwrng-distinct) distinct values in 256)" \
	[ "$(guest_value rng hwrng-distinct)" -gt 100 ]

boot_guest no-balloon --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=balloon-wait"
boot_guest balloon --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M --balloon size=64M \
	--cmdline "$GUEST_CMDLINE tern.action=balloon-wait"
without=$(guest_value no-balloon memtotal-kib)
with=$(guest_value balloon memtotal-kib)
check "balloon guest: tern exits 0, the guest powered off" powered_off balloon
# 64 MiB is 65536 KiB; allow 1 MiB either way for the kernel's own use.
check "balloon of 64 MiB: MemTotal $without KiB without, $with KiB with" \
	within 1024 "$((without - with))" 65536

finish
