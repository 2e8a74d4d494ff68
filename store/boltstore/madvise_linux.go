package boltstore

import "golang.org/x/sys/unix"

// dropMapping: madvise(MADV_DONTNEED) on [data, data+size), a region of
// bbolt's mapping (an address, not a Go pointer: the raw syscall).
func dropMapping(data uintptr, size int) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, data, uintptr(size), unix.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
