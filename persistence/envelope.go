package persistence

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/ipfs/go-cid"
)

// EnvelopeVersion is the only envelope format version this package writes and
// accepts.
const EnvelopeVersion = 1

// Multicodec and multihash codes used in event CIDs.
const (
	codecDagCBOR = 0x71
	mhSHA2_256   = 0x12
)

// cidPrefix is the binary prefix of every event CID: CIDv1, dag-cbor,
// sha2-256, 32-byte digest.
var cidPrefix = [4]byte{0x01, codecDagCBOR, mhSHA2_256, 0x20}

// CIDLen is the length of a binary event CID.
const CIDLen = 36

// Envelope is the dag-cbor document whose CID identifies an event. Its
// canonical encoding is a map with the keys, in dag-cbor order:
//
//	n     int    position of the event in the graph's chain, from 1
//	v     int    envelope version (1)
//	ts    int    transaction timestamp, Unix nanoseconds
//	tx    string transaction id
//	body  bytes  the event's protobuf encoding (cairn.v1.Event)
//	prev  link   CID of the previous event; absent for n = 1
//	type  string event type, for example "NodeAdded"
//	graph string graph id
type Envelope struct {
	Version int64
	Graph   string
	N       uint64
	Type    string
	Tx      string
	TS      int64
	Body    []byte
	Prev    cid.Cid // cid.Undef for the first event
}

// EventCID computes the CIDv1 (dag-cbor, sha2-256) of encoded envelope bytes.
func EventCID(dagCBOR []byte) []byte {
	return appendEventCID(make([]byte, 0, CIDLen), dagCBOR)
}

// appendEventCID appends the event CID of dagCBOR to dst: a check that
// only compares it passes a buffer on its stack.
func appendEventCID(dst, dagCBOR []byte) []byte {
	sum := sha256.Sum256(dagCBOR)
	dst = append(dst, cidPrefix[:]...)
	return append(dst, sum[:]...)
}

// CIDString is c.String() (multibase base32, "b…", for a CIDv1) in one
// allocation, where go-cid takes three: command replies carry their head's
// CID as text.
func CIDString(c cid.Cid) string {
	if c.Version() != 1 {
		return c.String()
	}
	raw := c.KeyString()
	n := cidBase32.EncodedLen(len(raw))
	buf := make([]byte, 1+n)
	buf[0] = 'b'
	cidBase32.Encode(buf[1:], unsafe.Slice(unsafe.StringData(raw), len(raw)))
	return unsafe.String(unsafe.SliceData(buf), len(buf))
}

// cidBase32 is multibase's "b" alphabet: RFC 4648 base32, lower case, no
// padding.
var cidBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// AppendEncode appends the canonical dag-cbor encoding of e to dst. It is
// byte-identical to go-ipld-prime's dagcbor encoder (tests prove it) and about
// five times faster.
func (e *Envelope) AppendEncode(dst []byte) []byte {
	dst = appendEnvelopeHead(dst, e.Prev.Defined(), e.N, e.Version, e.TS, e.Tx, len(e.Body))
	dst = append(dst, e.Body...)
	return appendEnvelopeTail(dst, e.Prev.KeyString(), e.Type, e.Graph)
}

// appendEnvelopeHead appends an envelope's encoding up to its body: the
// map's header (8 entries with prev, 7 without), n, v, ts, tx and the
// body's length (bodyLen bytes, which the caller appends next, then
// appendEnvelopeTail).
func appendEnvelopeHead(dst []byte, hasPrev bool, n uint64, version, ts int64, tx string, bodyLen int) []byte {
	entries := byte(7)
	if hasPrev {
		entries = 8
	}
	dst = append(dst, 0xa0|entries)
	dst = cborText(dst, "n")
	dst = cborUint(dst, 0, n)
	dst = cborText(dst, "v")
	dst = cborInt(dst, version)
	dst = cborText(dst, "ts")
	dst = cborInt(dst, ts)
	dst = cborText(dst, "tx")
	dst = cborText(dst, tx)
	dst = cborText(dst, "body")
	return cborUint(dst, 2, uint64(bodyLen))
}

// appendEnvelopeTail appends the rest of an envelope after its body: prev
// (the previous event's CID bytes, "" for a graph's first event, as
// appendEnvelopeHead was told), type and graph.
func appendEnvelopeTail[P string | []byte](dst []byte, prev P, typ, graph string) []byte {
	if len(prev) > 0 {
		dst = cborText(dst, "prev")
		dst = append(dst, 0xd8, 42) // tag 42: CID
		dst = cborUint(dst, 2, uint64(len(prev)+1))
		dst = append(dst, 0x00) // multibase identity prefix
		dst = append(dst, prev...)
	}
	dst = cborText(dst, "type")
	dst = cborText(dst, typ)
	dst = cborText(dst, "graph")
	return cborText(dst, graph)
}

func cborText(dst []byte, s string) []byte {
	dst = cborUint(dst, 3, uint64(len(s)))
	return append(dst, s...)
}

func cborInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return cborUint(dst, 0, uint64(v))
	}
	return cborUint(dst, 1, uint64(-(v + 1)))
}

// cborUint writes a head of the given major type with the minimal-length
// argument, as dag-cbor requires.
func cborUint(dst []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(dst, m|byte(v))
	case v <= math.MaxUint8:
		return append(dst, m|24, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(dst, m|27), v)
	}
}

// DecodeEnvelope decodes the canonical dag-cbor encoding of an envelope. It
// accepts only the exact bytes that AppendEncode would produce for the result,
// so a decoded envelope always re-encodes to the same bytes and the same CID.
// It returns an error wrapping ErrMalformed otherwise.
func DecodeEnvelope(data []byte) (Envelope, error) {
	return decodeEnvelope(data, expected{})
}

// expected is what a reader expects an envelope to hold: a decoded graph,
// transaction id or prev link equal to one of these shares the caller's
// value instead of a copy. aliasBody makes the body share data's bytes.
type expected struct {
	graph, tx string
	prev      cid.Cid
	aliasBody bool
}

// decodeEnvelope is DecodeEnvelope for a reader that expects want. The
// keys and a known event type allocate nothing either (a chain check
// decodes every envelope of every transaction it reads).
func decodeEnvelope(data []byte, want expected) (Envelope, error) {
	var e Envelope
	d := cborDecoder{buf: data}
	major, count, err := d.head()
	if err != nil {
		return e, err
	}
	if major != 5 || (count != 7 && count != 8) {
		return e, malformed("envelope is not a map of 7 or 8 entries")
	}
	keys := [...]string{"n", "v", "ts", "tx", "body", "prev", "type", "graph"}
	for _, k := range keys {
		if k == "prev" && count == 7 {
			continue
		}
		key, err := d.payload(3)
		if err != nil {
			return e, err
		}
		if string(key) != k {
			return e, malformed(fmt.Sprintf("envelope key %q where %q was expected", key, k))
		}
		switch k {
		case "n":
			if e.N, err = d.uint(); err != nil {
				return e, err
			}
		case "v":
			if e.Version, err = d.int(); err != nil {
				return e, err
			}
		case "ts":
			if e.TS, err = d.int(); err != nil {
				return e, err
			}
		case "tx":
			p, err := d.payload(3)
			if err != nil {
				return e, err
			}
			if e.Tx = want.tx; string(p) != want.tx {
				e.Tx = string(p)
			}
		case "body":
			p, err := d.payload(2)
			if err != nil {
				return e, err
			}
			if e.Body = p; !want.aliasBody {
				e.Body = append([]byte{}, p...)
			}
		case "prev":
			if e.Prev, err = d.link(want.prev); err != nil {
				return e, err
			}
		case "type":
			p, err := d.payload(3)
			if err != nil {
				return e, err
			}
			e.Type = eventTypeName(p)
		case "graph":
			p, err := d.payload(3)
			if err != nil {
				return e, err
			}
			if e.Graph = want.graph; string(p) != want.graph {
				e.Graph = string(p)
			}
		}
	}
	if d.off != len(data) {
		return e, malformed("trailing bytes after envelope")
	}
	return e, nil
}

type cborDecoder struct {
	buf []byte
	off int
}

func malformed(msg string) error { return fmt.Errorf("%w: %s", ErrMalformed, msg) }

// head reads a CBOR item head and checks that its argument is minimal.
func (d *cborDecoder) head() (major byte, arg uint64, err error) {
	if d.off >= len(d.buf) {
		return 0, 0, malformed("unexpected end of data")
	}
	b := d.buf[d.off]
	d.off++
	major, info := b>>5, b&0x1f
	var size int
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		return 0, 0, malformed("indefinite or reserved length")
	}
	if len(d.buf)-d.off < size {
		return 0, 0, malformed("unexpected end of data")
	}
	p := d.buf[d.off : d.off+size]
	d.off += size
	var min uint64
	switch size {
	case 1:
		arg, min = uint64(p[0]), 24
	case 2:
		arg, min = uint64(binary.BigEndian.Uint16(p)), math.MaxUint8+1
	case 4:
		arg, min = uint64(binary.BigEndian.Uint32(p)), math.MaxUint16+1
	default:
		arg, min = binary.BigEndian.Uint64(p), math.MaxUint32+1
	}
	if arg < min {
		return 0, 0, malformed("non-minimal integer encoding")
	}
	return major, arg, nil
}

func (d *cborDecoder) payload(major byte) ([]byte, error) {
	m, n, err := d.head()
	if err != nil {
		return nil, err
	}
	if m != major {
		return nil, malformed(fmt.Sprintf("major type %d where %d was expected", m, major))
	}
	if n > uint64(len(d.buf)-d.off) {
		return nil, malformed("length runs past the end of data")
	}
	p := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

// eventTypeName returns p as a string, without a copy for the types
// EventType names.
func eventTypeName(p []byte) string {
	switch string(p) {
	case "GraphCreated":
		return "GraphCreated"
	case "NodeAdded":
		return "NodeAdded"
	case "NodeComponentsChanged":
		return "NodeComponentsChanged"
	case "NodeRemoved":
		return "NodeRemoved"
	case "EdgeAdded":
		return "EdgeAdded"
	case "EdgeRemoved":
		return "EdgeRemoved"
	case "GraphDeleted":
		return "GraphDeleted"
	}
	return string(p)
}

func (d *cborDecoder) text() (string, error) {
	p, err := d.payload(3)
	return string(p), err
}

func (d *cborDecoder) uint() (uint64, error) {
	m, v, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != 0 {
		return 0, malformed("expected an unsigned integer")
	}
	return v, nil
}

func (d *cborDecoder) int() (int64, error) {
	m, v, err := d.head()
	if err != nil {
		return 0, err
	}
	switch {
	case m == 0 && v <= math.MaxInt64:
		return int64(v), nil
	case m == 1 && v <= math.MaxInt64:
		return -int64(v) - 1, nil
	}
	return 0, malformed("expected a 64-bit integer")
}

// link decodes a CID link; one equal to want shares it.
func (d *cborDecoder) link(want cid.Cid) (cid.Cid, error) {
	if len(d.buf)-d.off < 2 || d.buf[d.off] != 0xd8 || d.buf[d.off+1] != 42 {
		return cid.Undef, malformed("prev is not a CID link (tag 42)")
	}
	d.off += 2
	p, err := d.payload(2)
	if err != nil {
		return cid.Undef, err
	}
	if len(p) < 2 || p[0] != 0x00 {
		return cid.Undef, malformed("CID link without the identity multibase prefix")
	}
	if want.Defined() && string(p[1:]) == want.KeyString() {
		return want, nil
	}
	n, c, err := cid.CidFromBytes(p[1:])
	if err != nil {
		return cid.Undef, malformed("prev: " + err.Error())
	}
	if n != len(p)-1 {
		return cid.Undef, malformed("trailing bytes after prev CID")
	}
	return c, nil
}
