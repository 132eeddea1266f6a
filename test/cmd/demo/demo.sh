# The demo guest: its console and tern's log go straight to the output.
# A stock guest now and then hangs in the emulated test host (QEMU's
# microvm guests too; see the README, Tests), so tern runs under the
# scenarios' time limit (lib.sh: TERN_RUN_TIMEOUT, SIGKILL 10 s after the
# SIGTERM), and the demo says so when it ran into it (note_limit) rather
# than wait for its own deadline.
. "$SCENARIO_DIR/lib.sh"
echo "DEMO: $TERN run --kernel $KERNEL_BZIMAGE --initrd $INITRD --cpus 1 --memory 256M --cmdline 'console=ttyS0 tern.action=poweroff'"
date +%s >"$OUT/demo.t0"
timeout -k 10 "$TERN_RUN_TIMEOUT" "$TERN" run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "console=ttyS0 tern.action=poweroff" </dev/null
rc=$?
echo "$rc" >"$OUT/demo.rc"
echo "DEMO: tern exited with status $rc"
note_limit demo
exit $rc
