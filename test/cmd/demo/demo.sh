# The demo guest: its console and tern's log go straight to the output.
echo "DEMO: $TERN run --kernel $KERNEL_BZIMAGE --initrd $INITRD --cpus 1 --memory 256M --cmdline 'console=ttyS0 tern.action=poweroff'"
"$TERN" run --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--cmdline "console=ttyS0 tern.action=poweroff" </dev/null
rc=$?
echo "DEMO: tern exited with status $rc"
exit $rc
