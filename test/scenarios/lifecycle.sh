# How a guest ends its life decides tern's exit: a power-off and a reset
# requested by the guest both end tern with status 0, the reset logged.
. "$SCENARIO_DIR/lib.sh"

boot_guest poweroff --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
check "poweroff -f in the guest: tern exits 0" [ "$(run_rc poweroff)" = 0 ]
check "poweroff -f in the guest: the guest got to its action" [ "$(guest_value poweroff action)" = poweroff ]
check "poweroff: tern logged first KVM_RUN" tern_logged poweroff "first KVM_RUN"
check "poweroff: tern logged boot-time" tern_logged poweroff boot-time

boot_guest reboot --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=reboot"
check "reboot -f in the guest: tern exits 0" [ "$(run_rc reboot)" = 0 ]
check "reboot -f in the guest: the guest got to its action" [ "$(guest_value reboot action)" = reboot ]
check "reboot -f in the guest: tern logged the reset" tern_logged reboot "guest requested reset"

finish
