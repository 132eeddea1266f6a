# The stock kernel boots with its root filesystem on tern's virtio-blk disk
# (root=/dev/vda, ext4), writes a file and powers off; the host reads the
# file back out of the image with debugfs, without mounting it. A read-only
# disk refuses the guest's writes.
. "$SCENARIO_DIR/lib.sh"

cp "$ROOT_IMAGE" "$OUT/root.ext4"
boot_guest disk-rw --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--disk "path=$OUT/root.ext4,root=on,id=ternroot" \
	--cmdline "$GUEST_CMDLINE tern.action=disk-write"
check "root on virtio-blk: tern exits 0 after guest poweroff" powered_off disk-rw
check "root on virtio-blk: / is the ext4 disk, mounted rw ($(guest_value disk-rw rootfs))" \
	[ "$(guest_value disk-rw rootfs)" = "ext4:rw" ]
check "root on virtio-blk: the guest wrote its file" [ "$(guest_value disk-rw disk-write-rc)" = 0 ]
host_sha=$(debugfs -R "cat /tern-written" "$OUT/root.ext4" 2>/dev/null | sha256sum | cut -d' ' -f1)
check "root on virtio-blk: debugfs reads the guest's file from the image (sha $host_sha)" \
	same_sum "$(guest_value disk-rw disk-sha)" "$host_sha"

cp "$ROOT_IMAGE" "$OUT/root-ro.ext4"
before=$(sha256sum "$OUT/root-ro.ext4" | cut -d' ' -f1)
boot_guest disk-ro --kernel "$KERNEL_BZIMAGE" --initrd "$INITRD" --cpus 1 --memory 256M \
	--disk "path=$OUT/root-ro.ext4,root=on,ro=on" \
	--cmdline "$GUEST_CMDLINE tern.action=disk-ro"
check "read-only disk: tern exits 0, the guest powered off" powered_off disk-ro
check "read-only disk: / is the ext4 disk, mounted ro ($(guest_value disk-ro rootfs))" \
	[ "$(guest_value disk-ro rootfs)" = "ext4:ro" ]
check "read-only disk: a write is refused" [ "$(guest_value disk-ro ro-write)" = refused ]
check "read-only disk: remounting rw is refused" [ "$(guest_value disk-ro ro-remount)" = refused ]
check "read-only disk: the image is unchanged" [ "$(sha256sum "$OUT/root-ro.ext4" | cut -d' ' -f1)" = "$before" ]

finish
