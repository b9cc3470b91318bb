package wire

import (
	"crypto/sha256"
	"hash/crc32"
)

// sumPiece is how many bytes Checksum and SHA256 hand the hash at a time.
// The hashes run in assembly that the Go scheduler cannot preempt: over a
// 100 MB snapshot in one call, SHA-256 holds its CPU for about 60 ms, and a
// garbage collection that must stop the world waits for it with every
// other goroutine stopped. A MiB is under a millisecond.
const sumPiece = 1 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of b, the checksum of the
// snapshot encodings.
func Checksum(b []byte) uint32 {
	var c uint32
	for len(b) > 0 {
		n := min(len(b), sumPiece)
		c = crc32.Update(c, castagnoli, b[:n])
		b = b[n:]
	}
	return c
}

// SHA256 returns the SHA-256 of b, as sha256.Sum256 does.
func SHA256(b []byte) [sha256.Size]byte {
	if len(b) <= sumPiece {
		return sha256.Sum256(b)
	}
	h := sha256.New()
	for len(b) > 0 {
		n := min(len(b), sumPiece)
		h.Write(b[:n])
		b = b[n:]
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Prefault writes a zero into every 4 KiB page of b (which must be zero),
// so that the kernel maps b's pages here, in a Go loop the scheduler can
// preempt between page faults, rather than inside the first memmove or
// memclr that reaches them. A fresh 100 MB buffer takes about 25,000
// faults, slow on a virtual machine whose host backs guest memory lazily
// (half a second measured); taken inside one assembly copy they make its
// goroutine unpreemptible for as long, and a garbage collection that
// needs its stack spins on another CPU until it ends: the whole process
// stalls.
func Prefault(b []byte) {
	for i := 0; i < len(b); i += 4 << 10 {
		b[i] = 0
	}
}
