//go:build unix

package offheap

import "syscall"

// mapBytes maps n bytes of anonymous memory, zero, outside the Go heap.
func mapBytes(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

// unmapBytes unmaps what mapBytes mapped.
func unmapBytes(b []byte) { _ = syscall.Munmap(b[:cap(b)]) }
