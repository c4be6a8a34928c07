# Workload content generator, shared by the guest workload (busybox awk) and
# the host verifier wl-verify.sh (busybox awk too, so both run the same code).
# Usage: awk -v n=N -f wlgen.awk > FILE
# File N is made of 64-byte lines; the line count is 64 * (1 + (N*37) % 64),
# so sizes vary with N between 4 KiB and 256 KiB in 4 KiB steps. Line i is
#   "lbtest wl f<N:%06d> l<i:%04d> <h:%010d>" padded with spaces to 63 bytes,
# then "\n", where h = (N*7919 + i*104729) % 1000003.
BEGIN {
	n = int(n + 0)
	lines = 64 * (1 + (n * 37) % 64)
	for (i = 0; i < lines; i++) {
		h = (n * 7919 + i * 104729) % 1000003
		printf "%-63s\n", sprintf("lbtest wl f%06d l%04d %010d", n, i, h)
	}
	exit 0
}
