# The demo guest: its console and tern's log go straight to the output.
# A stock guest now and then hangs in the emulated test host (QEMU's
# microvm guests too; see the README, Tests), so tern is stopped after
# TERN_RUN_TIMEOUT seconds (SIGTERM, SIGKILL 10 s later) and the demo says
# so rather than wait for its own deadline.
limit=${TERN_RUN_TIMEOUT:-120}
echo "DEMO: $TERN run --kernel $KERNEL_BZIMAGE --initrd $INITRD --cpus 1 --memory 256M --cmdline 'console=ttyS0 tern.action=poweroff'"
timeout -k 10 "$limit" "$TERN" run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "console=ttyS0 tern.action=poweroff" </dev/null
rc=$?
echo "DEMO: tern exited with status $rc"
# busybox's timeout signals tern itself: tern exits 143 (128+SIGTERM)
# after its teardown, or dies of the SIGKILL (137).
if [ "$rc" = 143 ] || [ "$rc" = 137 ]; then
	echo "DEMO-TIMEOUT: the guest did not power off within ${limit}s; tern was stopped"
fi
exit $rc
