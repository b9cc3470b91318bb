package persistence_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/cairn-graph/cairn/persistence"
)

var envelopeSeed = flag.Uint64("envelope.seed", 0, "seed for TestEnvelopeMatchesGoIPLDPrime (0: from the clock)")

// Lengths on both sides of every CBOR length-head boundary.
var cborLengths = []int{0, 1, 23, 24, 25, 255, 256, 257, 65535, 65536, 65537}

var cborUints = []uint64{
	0, 1, 23, 24, 255, 256, 65535, 65536,
	math.MaxUint32 - 1, math.MaxUint32, math.MaxUint32 + 1,
	math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64 - 1, math.MaxUint64,
}

var cborInts = []int64{
	0, 1, -1, 23, -24, 24, -25, 255, -256, 256, -257, 65535, -65536, 65536, -65537,
	math.MaxUint32, -math.MaxUint32 - 1, math.MaxUint32 + 1, -math.MaxUint32 - 2,
	math.MaxInt64, math.MinInt64, math.MinInt64 + 1, -1_700_000_000_123_456_789,
}

// randText returns valid UTF-8 of exactly n bytes, mixing ASCII with 2-, 3-
// and 4-byte runes.
func randText(r *rand.Rand, n int) string {
	runes := []rune{'a', 'Z', '-', '_', 'é', 'ß', 'Ж', '中', '文', '→', '😀', '𝄞', 0x10FFFF}
	var b strings.Builder
	b.Grow(n)
	for b.Len() < n {
		c := runes[r.IntN(len(runes))]
		if b.Len()+utf8.RuneLen(c) > n {
			c = 'x'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func randLen(r *rand.Rand) int {
	if r.IntN(3) == 0 {
		return r.IntN(40)
	}
	return cborLengths[r.IntN(len(cborLengths))]
}

func randCID(r *rand.Rand) cid.Cid {
	data := make([]byte, 1+r.IntN(64))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(data)
	switch r.IntN(4) {
	case 0: // CIDv0: a bare sha2-256 multihash.
		mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
		return cid.NewCidV0(mh)
	case 1: // raw codec, identity multihash of a short payload.
		mh, _ := multihash.Encode(data[:min(len(data), 20)], multihash.IDENTITY)
		return cid.NewCidV1(cid.Raw, mh)
	default: // what events link to
		mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
		return cid.NewCidV1(cid.DagCBOR, mh)
	}
}

func randEnvelope(r *rand.Rand) persistence.Envelope {
	e := persistence.Envelope{
		Version: 1,
		Graph:   randText(r, randLen(r)),
		N:       cborUints[r.IntN(len(cborUints))],
		Type:    randText(r, randLen(r)),
		Tx:      randText(r, randLen(r)),
		TS:      cborInts[r.IntN(len(cborInts))],
	}
	switch r.IntN(6) {
	case 0:
		e.N = r.Uint64()
	case 1:
		e.N = uint64(r.IntN(1000)) + 1
	}
	if r.IntN(4) == 0 {
		e.TS = int64(r.Uint64())
	}
	if r.IntN(5) == 0 {
		e.Version = cborInts[r.IntN(len(cborInts))]
	}
	switch r.IntN(8) {
	case 0: // nil body
	case 1:
		e.Body = []byte{}
	case 2: // big body
		e.Body = make([]byte, 1<<20+r.IntN(1000))
	default:
		e.Body = make([]byte, randLen(r))
	}
	for i := range e.Body {
		e.Body[i] = byte(r.Uint32())
	}
	if r.IntN(3) != 0 {
		e.Prev = randCID(r)
	}
	return e
}

// TestEnvelopeMatchesGoIPLDPrime is the proof doc.go promises: on random
// envelopes AppendEncode is byte-identical to go-ipld-prime's dag-cbor, and
// each side decodes the other's bytes to the same envelope.
func TestEnvelopeMatchesGoIPLDPrime(t *testing.T) {
	seed := *envelopeSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -envelope.seed=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	const rounds = 400
	for i := range rounds {
		e := randEnvelope(r)
		ours := e.AppendEncode(nil)
		ref, err := ipldEncode(e)
		if err != nil {
			t.Fatalf("seed %d round %d: go-ipld-prime encode: %v", seed, i, err)
		}
		if !bytes.Equal(ours, ref) {
			t.Fatalf("seed %d round %d: AppendEncode differs from go-ipld-prime at byte %d of %d/%d\nours %x\nref  %x",
				seed, i, firstDiff(ours, ref), len(ours), len(ref), head(ours), head(ref))
		}
		// AppendEncode appends: a prefix stays, the encoding follows it.
		if got := e.AppendEncode([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), ref...)) {
			t.Fatalf("seed %d round %d: AppendEncode onto a prefix is not prefix+encoding", seed, i)
		}

		dec, err := persistence.DecodeEnvelope(ref)
		if err != nil {
			t.Fatalf("seed %d round %d: DecodeEnvelope(go-ipld-prime bytes): %v", seed, i, err)
		}
		if d := envelopeDiff(dec, e); d != "" {
			t.Fatalf("seed %d round %d: DecodeEnvelope round trip: %s", seed, i, d)
		}

		back, err := ipldDecode(ours)
		if err != nil {
			t.Fatalf("seed %d round %d: go-ipld-prime decode of AppendEncode bytes: %v", seed, i, err)
		}
		if d := envelopeDiff(back, e); d != "" {
			t.Fatalf("seed %d round %d: go-ipld-prime decode: %s", seed, i, d)
		}

		c, err := ipldCID(e)
		if err != nil {
			t.Fatalf("seed %d round %d: go-ipld-prime link: %v", seed, i, err)
		}
		if !bytes.Equal(persistence.EventCID(ours), c.Bytes()) {
			t.Fatalf("seed %d round %d: EventCID %x != go-ipld-prime %s", seed, i, persistence.EventCID(ours), c)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func head(b []byte) []byte { return b[:min(len(b), 96)] }

// validEnvelopes are encodings DecodeEnvelope must accept.
func validEnvelopes() [][]byte {
	prev := mustCIDNoT(vectorCID1)
	body1, _ := hex.DecodeString(vectorBody1)
	envs := []persistence.Envelope{
		{Version: 1, Graph: vectorGraph, N: 1, Type: "GraphCreated", Tx: vectorTx, TS: vectorTS, Body: body1},
		{Version: 1, Graph: vectorGraph, N: 2, Type: "NodeAdded", Tx: vectorTx, TS: vectorTS, Body: []byte{0x12, 0x03, 0x0a, 0x01, 0x61}, Prev: prev},
		{Version: 1, N: math.MaxUint64, TS: math.MinInt64, Prev: prev},
		{Version: -1, N: 24, TS: -25, Graph: strings.Repeat("g", 24), Tx: strings.Repeat("t", 256), Body: make([]byte, 256)},
	}
	out := make([][]byte, len(envs))
	for i, e := range envs {
		out[i] = e.AppendEncode(nil)
	}
	return out
}

func mustCIDNoT(s string) cid.Cid {
	c, err := cid.Decode(s)
	if err != nil {
		panic(err)
	}
	return c
}

// malformedEnvelopes are inputs DecodeEnvelope must reject, each a near miss
// of a canonical encoding.
func malformedEnvelopes() []struct {
	name string
	data []byte
} {
	valid := validEnvelopes()
	first, second := valid[0], valid[1]
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	// The first event's encoding starts a7 61 6e 01 ("n": 1).
	return []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"map head only", first[:1]},
		{"truncated", first[:len(first)-1]},
		{"trailing byte", append(bytes.Clone(first), 0x00)},
		{"two envelopes", append(bytes.Clone(first), first...)},
		{"array, not map", mod(first, func(b []byte) []byte { b[0] = 0x87; return b })},
		{"map of 6", mod(first, func(b []byte) []byte { b[0] = 0xa6; return b })},
		{"map of 8 without prev", mod(first, func(b []byte) []byte { b[0] = 0xa8; return b })},
		{"map of 7 with prev", mod(second, func(b []byte) []byte { b[0] = 0xa7; return b })},
		{"indefinite map", mod(first, func(b []byte) []byte { b[0] = 0xbf; return append(b, 0xff) })},
		{"non-minimal map head", append([]byte{0xb8, 0x07}, first[1:]...)},
		{"non-minimal n", append([]byte{0xa7, 0x61, 0x6e, 0x18, 0x01}, first[4:]...)},
		{"non-minimal n, 8 bytes", append([]byte{0xa7, 0x61, 0x6e, 0x1b, 0, 0, 0, 0, 0, 0, 0, 1}, first[4:]...)},
		{"negative n", append([]byte{0xa7, 0x61, 0x6e, 0x20}, first[4:]...)},
		{"n as text", append([]byte{0xa7, 0x61, 0x6e, 0x61, 0x31}, first[4:]...)},
		{"key n as bytes", append([]byte{0xa7, 0x41, 0x6e}, first[3:]...)},
		{"keys out of order", append([]byte{0xa7, 0x61, 0x76, 0x01, 0x61, 0x6e, 0x01}, first[7:]...)},
		{"unknown key", append([]byte{0xa7, 0x61, 0x6d}, first[3:]...)},
		{"non-minimal key length", append([]byte{0xa7, 0x78, 0x01, 0x6e}, first[3:]...)},
		{"indefinite key", append([]byte{0xa7, 0x7f, 0x61, 0x6e, 0xff}, first[3:]...)},
		{"reserved info", append([]byte{0xa7, 0x61, 0x6e, 0x1c}, first[4:]...)},
		{"float n", append([]byte{0xa7, 0x61, 0x6e, 0xf9, 0x3c, 0x00}, first[4:]...)},
		{"ts above int64", replaceOnce(first, hexb("627473"+"1b17979cfe362a0000"), hexb("627473"+"1b8000000000000000"))},
		{"ts below int64", replaceOnce(first, hexb("627473"+"1b17979cfe362a0000"), hexb("627473"+"3b8000000000000000"))},
		{"body as text", replaceOnce(first, hexb("64626f64794c"), hexb("64626f64796c"))},
		{"body length past end", replaceOnce(first, hexb("64626f64794c"), hexb("64626f64795b7fffffffffffffff"))},
		{"prev without tag", replaceOnce(second, hexb("d82a5825"), hexb("5825"))},
		{"prev with tag 43", replaceOnce(second, hexb("d82a5825"), hexb("d82b5825"))},
		{"prev without multibase prefix", replaceOnce(second, hexb("d82a582500"), hexb("d82a582501"))},
		{"prev with trailing byte", replaceOnce(second, hexb("d82a582500"+"01711220"), hexb("d82a582600"+"01711220"))},
		{"prev truncated CID", replaceOnce(second, hexb("d82a582500"+"01711220"), hexb("d82a582400"+"01711220"))},
		{"prev as text", replaceOnce(second, hexb("d82a5825"), hexb("d82a7825"))},
		{"prev empty bytes", replaceOnce(second, hexb("d82a5825"), hexb("d82a40"))},
	}
}

func hexb(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func replaceOnce(b, old, repl []byte) []byte {
	if bytes.Count(b, old) != 1 {
		panic("replaceOnce: " + hex.EncodeToString(old) + " is not in the input exactly once")
	}
	return bytes.Replace(b, old, repl, 1)
}

func TestDecodeEnvelopeRejectsNonCanonical(t *testing.T) {
	for _, tc := range malformedEnvelopes() {
		t.Run(tc.name, func(t *testing.T) {
			e, err := persistence.DecodeEnvelope(tc.data)
			if err == nil {
				t.Fatalf("DecodeEnvelope(%x) = %+v, want an error", tc.data, e)
			}
			if !errors.Is(err, persistence.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestDecodeEnvelopeAcceptsCanonical(t *testing.T) {
	for i, data := range validEnvelopes() {
		e, err := persistence.DecodeEnvelope(data)
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if got := e.AppendEncode(nil); !bytes.Equal(got, data) {
			t.Errorf("envelope %d re-encodes to %x, want %x", i, got, data)
		}
		// The body is a copy: the input buffer can be reused.
		body := bytes.Clone(e.Body)
		for j := range data {
			data[j] ^= 0xff
		}
		if !bytes.Equal(e.Body, body) {
			t.Errorf("envelope %d: body aliases the input", i)
		}
	}
}

// FuzzDecodeEnvelope: no input panics, and whatever decodes is canonical:
// it re-encodes to exactly the input, and go-ipld-prime reads the same
// envelope from it.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, data := range validEnvelopes() {
		f.Add(data)
	}
	for _, tc := range malformedEnvelopes() {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := persistence.DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, persistence.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if got := e.AppendEncode(nil); !bytes.Equal(got, data) {
			t.Fatalf("decoded %x but it re-encodes to %x", data, got)
		}
		ref, err := ipldDecode(data)
		if err != nil {
			t.Fatalf("DecodeEnvelope accepted %x, go-ipld-prime did not: %v", data, err)
		}
		if d := envelopeDiff(ref, e); d != "" {
			t.Fatalf("go-ipld-prime reads %x differently: %s", data, d)
		}
	})
}
