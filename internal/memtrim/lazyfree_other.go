//go:build !linux

package memtrim

// DropLazyFree does nothing outside Linux (see the Linux version).
func DropLazyFree() (bool, error) { return false, nil }
