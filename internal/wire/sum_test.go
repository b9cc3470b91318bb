package wire

import (
	"crypto/sha256"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestSumsInPieces checks the piecewise hashes against one-call ones at
// sizes around the piece boundary.
func TestSumsInPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, sumPiece - 1, sumPiece, sumPiece + 1, 3*sumPiece + 12345} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if got, want := Checksum(b), crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)); got != want {
			t.Errorf("Checksum of %d bytes = %08x, want %08x", n, got, want)
		}
		if got, want := SHA256(b), sha256.Sum256(b); got != want {
			t.Errorf("SHA256 of %d bytes = %x, want %x", n, got, want)
		}
	}
}

// TestPrefault leaves a zero buffer zero, whatever its length.
func TestPrefault(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 4097, 3<<20 + 5} {
		b := make([]byte, n)
		Prefault(b)
		for i, c := range b {
			if c != 0 {
				t.Fatalf("%d bytes: byte %d is %d", n, i, c)
			}
		}
	}
}
