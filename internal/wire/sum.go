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
func Checksum(b []byte) uint32 { return ChecksumPaced(b, nil) }

// ChecksumPaced is Checksum calling step (unless nil) after each MiB, so
// that a caller can pace the work (see Step).
func ChecksumPaced(b []byte, step Step) uint32 {
	var c uint32
	for len(b) > 0 {
		n := min(len(b), sumPiece)
		c = crc32.Update(c, castagnoli, b[:n])
		b = b[n:]
		step.Do()
	}
	return c
}

// SHA256 returns the SHA-256 of b, as sha256.Sum256 does.
func SHA256(b []byte) [sha256.Size]byte { return SHA256Paced(b, nil) }

// SHA256Paced is SHA256 calling step (unless nil) after each MiB.
func SHA256Paced(b []byte, step Step) [sha256.Size]byte {
	if len(b) <= sumPiece {
		return sha256.Sum256(b)
	}
	h := sha256.New()
	for len(b) > 0 {
		n := min(len(b), sumPiece)
		h.Write(b[:n])
		b = b[n:]
		step.Do()
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Step is called between bounded pieces of a long encoding or hash (a MiB
// or one section of a snapshot), so that the caller can pace background
// work: pace.Worker.Step sleeps there once the work has had its share of
// a CPU. A nil Step does nothing. An encoding that takes a Step gives the
// same bytes as without.
type Step func()

// Do calls s unless it is nil.
func (s Step) Do() {
	if s != nil {
		s()
	}
}

// Prefault writes a zero into every 4 KiB page of b (which must be zero,
// or spare room whose bytes do not matter),
// so that the kernel maps b's pages here, in a Go loop the scheduler can
// preempt between page faults, rather than inside the first memmove or
// memclr that reaches them. A fresh 100 MB buffer takes about 25,000
// faults, slow on a virtual machine whose host backs guest memory lazily
// (half a second measured); taken inside one assembly copy they make its
// goroutine unpreemptible for as long, and a garbage collection that
// needs its stack spins on another CPU until it ends: the whole process
// stalls.
func Prefault(b []byte) { PrefaultPaced(b, nil) }

// PrefaultPaced is Prefault calling step (unless nil) after each MiB: the
// faults of a fresh 100 MB buffer are CPU work that a snapshot paces.
func PrefaultPaced(b []byte, step Step) {
	for len(b) > 0 {
		n := min(len(b), sumPiece)
		for i := 0; i < n; i += 4 << 10 {
			b[i] = 0
		}
		b = b[n:]
		step.Do()
	}
}
