//go:build !unix

package offheap

// mapBytes allocates n bytes on the heap: no mmap here.
func mapBytes(n int) ([]byte, error) { return make([]byte, n), nil }

// unmapBytes leaves b to the garbage collector.
func unmapBytes([]byte) {}
