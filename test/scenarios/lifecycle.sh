# How a guest ends its life decides tern's exit: a power-off and a reset
# requested by the guest both end tern with status 0, the reset logged; a
# SIGTERM from the host stops it cleanly with status 128+15.
. "$SCENARIO_DIR/lib.sh"

boot_guest poweroff --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=poweroff"
check "poweroff -f in the guest: tern exits 0" powered_off poweroff
check "poweroff -f in the guest: the guest got to its action" [ "$(guest_value poweroff action)" = poweroff ]
check "poweroff: tern logged first KVM_RUN" tern_logged poweroff "first KVM_RUN"
check "poweroff: tern logged boot-time" tern_logged poweroff boot-time

boot_guest reboot --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=reboot"
check "reboot -f in the guest: tern exits 0" [ "$(run_rc reboot)" = 0 ]
check "reboot -f in the guest: the guest got to its action" [ "$(guest_value reboot action)" = reboot ]
check "reboot -f in the guest: tern logged the reset" tern_logged reboot "guest requested reset"

signal_guest sigterm TERM "TERN-GUEST idle=yes" --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 2 --memory 256M \
	--cmdline "$GUEST_CMDLINE tern.action=sleep"
check "SIGTERM to tern: exit status 143 (128+15)" [ "$(run_rc sigterm)" = 143 ]
check "SIGTERM to tern: the guest had booted and was idle" [ "$(guest_value sigterm idle)" = yes ]
check "SIGTERM to tern: tern logged the guest's boot-time" tern_logged sigterm boot-time
check "SIGTERM to tern: tern logged a clean stop" tern_logged sigterm 'VM stopped.*stop requested by the host'

finish
