package persistence_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"

	"github.com/cairn-graph/cairn/persistence"
)

// The reference side of the differential tests: go-ipld-prime builds,
// encodes, decodes and hashes envelopes without any code from package
// persistence.

// eventLinkProto is how the design says event CIDs are made: CIDv1, dag-cbor,
// sha2-256, 32-byte digest.
var eventLinkProto = cidlink.LinkPrototype{Prefix: cid.Prefix{
	Version:  1,
	Codec:    0x71,
	MhType:   0x12,
	MhLength: 32,
}}

// ipldEnvelope builds the envelope map by hand. The entries are assembled in
// the order doc.go lists them in the prose (v first), not in canonical
// order: sorting is the encoder's job.
func ipldEnvelope(e persistence.Envelope) (datamodel.Node, error) {
	size := int64(7)
	if e.Prev.Defined() {
		size = 8
	}
	return qp.BuildMap(basicnode.Prototype.Any, size, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "v", qp.Int(e.Version))
		qp.MapEntry(ma, "graph", qp.String(e.Graph))
		// basicnode.NewUint keeps positions above MaxInt64 exact.
		qp.MapEntry(ma, "n", qp.Node(basicnode.NewUint(e.N)))
		qp.MapEntry(ma, "type", qp.String(e.Type))
		qp.MapEntry(ma, "tx", qp.String(e.Tx))
		qp.MapEntry(ma, "ts", qp.Int(e.TS))
		qp.MapEntry(ma, "body", qp.Bytes(e.Body))
		if e.Prev.Defined() {
			qp.MapEntry(ma, "prev", qp.Link(cidlink.Link{Cid: e.Prev}))
		}
	})
}

// ipldEncode is go-ipld-prime's dag-cbor encoding of e.
func ipldEncode(e persistence.Envelope) ([]byte, error) {
	n, err := ipldEnvelope(e)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ipldCID is the CID go-ipld-prime's link system computes for e: it encodes
// through the multicodec registry and hashes with eventLinkProto.
func ipldCID(e persistence.Envelope) (cid.Cid, error) {
	n, err := ipldEnvelope(e)
	if err != nil {
		return cid.Undef, err
	}
	lsys := cidlink.DefaultLinkSystem()
	lnk, err := lsys.ComputeLink(eventLinkProto, n)
	if err != nil {
		return cid.Undef, err
	}
	return lnk.(cidlink.Link).Cid, nil
}

// ipldDecode decodes dag-cbor bytes with go-ipld-prime and reads the envelope
// fields out of the resulting map.
func ipldDecode(data []byte) (persistence.Envelope, error) {
	var e persistence.Envelope
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(data)); err != nil {
		return e, err
	}
	n := nb.Build()
	if n.Kind() != datamodel.Kind_Map {
		return e, fmt.Errorf("decoded a %s, not a map", n.Kind())
	}
	field := func(k string) (datamodel.Node, error) {
		v, err := n.LookupByString(k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		return v, nil
	}
	var err error
	var v datamodel.Node
	if v, err = field("v"); err != nil {
		return e, err
	}
	if e.Version, err = v.AsInt(); err != nil {
		return e, err
	}
	if v, err = field("n"); err != nil {
		return e, err
	}
	if un, ok := v.(datamodel.UintNode); ok {
		e.N, err = un.AsUint()
	} else {
		var i int64
		i, err = v.AsInt()
		if i < 0 {
			return e, fmt.Errorf("negative n %d", i)
		}
		e.N = uint64(i)
	}
	if err != nil {
		return e, err
	}
	if v, err = field("ts"); err != nil {
		return e, err
	}
	if e.TS, err = v.AsInt(); err != nil {
		return e, err
	}
	for _, s := range []struct {
		key string
		dst *string
	}{{"graph", &e.Graph}, {"type", &e.Type}, {"tx", &e.Tx}} {
		if v, err = field(s.key); err != nil {
			return e, err
		}
		if *s.dst, err = v.AsString(); err != nil {
			return e, err
		}
	}
	if v, err = field("body"); err != nil {
		return e, err
	}
	if e.Body, err = v.AsBytes(); err != nil {
		return e, err
	}
	want := int64(7)
	if v, err := n.LookupByString("prev"); err == nil {
		want = 8
		l, err := v.AsLink()
		if err != nil {
			return e, fmt.Errorf("prev: %w", err)
		}
		e.Prev = l.(cidlink.Link).Cid
	}
	if n.Length() != want {
		return e, fmt.Errorf("map has %d entries, want %d", n.Length(), want)
	}
	return e, nil
}

// envelopeDiff describes how two envelopes differ, "" when they are equal
// (a nil and an empty body are equal).
func envelopeDiff(got, want persistence.Envelope) string {
	var d []string
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("v %d != %d", got.Version, want.Version))
	}
	if got.Graph != want.Graph {
		d = append(d, fmt.Sprintf("graph %q != %q", short(got.Graph), short(want.Graph)))
	}
	if got.N != want.N {
		d = append(d, fmt.Sprintf("n %d != %d", got.N, want.N))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("type %q != %q", short(got.Type), short(want.Type)))
	}
	if got.Tx != want.Tx {
		d = append(d, fmt.Sprintf("tx %q != %q", short(got.Tx), short(want.Tx)))
	}
	if got.TS != want.TS {
		d = append(d, fmt.Sprintf("ts %d != %d", got.TS, want.TS))
	}
	if !bytes.Equal(got.Body, want.Body) {
		d = append(d, fmt.Sprintf("body of %d bytes != %d bytes", len(got.Body), len(want.Body)))
	}
	if !got.Prev.Equals(want.Prev) {
		d = append(d, fmt.Sprintf("prev %v != %v", got.Prev, want.Prev))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func short(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s…(%d bytes)", s[:40], len(s))
	}
	return s
}

// TestIndependentSignatureCheck checks a signed transaction the way an
// outsider would, with go-ipld-prime, crypto/ed25519 and the documented
// byte layout only: decode and re-hash every envelope, follow the prev
// links, rebuild the signed bytes by hand and verify the signature with the
// public key decoded from its nkey string (base32, one prefix byte, 32 key
// bytes, a 2-byte CRC).
func TestIndependentSignatureCheck(t *testing.T) {
	signer := newTestSigner(t)
	txs := signedChain(t, chainGraph, signer)
	var prev cid.Cid
	for i, tx := range txs {
		for j, rec := range tx.GetEvents() {
			env, err := ipldDecode(rec.GetDagCbor())
			if err != nil {
				t.Fatalf("tx %d event %d: %v", i, j, err)
			}
			c, err := ipldCID(env)
			if err != nil || !bytes.Equal(c.Bytes(), rec.GetCid()) {
				t.Fatalf("tx %d event %d: go-ipld-prime's CID %v (%v) is not the stored one", i, j, c, err)
			}
			if !env.Prev.Equals(prev) || env.Tx != tx.GetTxId() || env.Graph != tx.GetGraphId() {
				t.Fatalf("tx %d event %d: envelope %+v does not link onto %v", i, j, env, prev)
			}
			prev = c
		}
		str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
		h := sha256.New()
		for _, cr := range tx.GetCommands() {
			var b []byte
			for _, s := range []string{cr.GetCommandId(), cr.GetCorrelationId(), cr.GetCausationId(), cr.GetIssuer()} {
				b = str(b, s)
			}
			h.Write(binary.AppendUvarint(b, uint64(cr.GetEventCount())))
		}
		msg := []byte("cairn/tx/v1\n")
		msg = str(msg, tx.GetGraphId())
		msg = str(msg, tx.GetTxId())
		msg = str(msg, string(prev.Bytes()))
		msg = h.Sum(msg)
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(tx.GetKeyId())
		if err != nil || len(raw) != 1+ed25519.PublicKeySize+2 {
			t.Fatalf("key id %q does not decode: %v", tx.GetKeyId(), err)
		}
		pub := ed25519.PublicKey(raw[1 : 1+ed25519.PublicKeySize])
		if !ed25519.Verify(pub, msg, tx.GetSignature()) {
			t.Fatalf("tx %d: ed25519 refuses the signature over the documented bytes", i)
		}
		tx.Commands[0].Issuer = "attacker"
		if m, _ := persistence.TransactionSigningBytes(tx); ed25519.Verify(pub, m, tx.GetSignature()) {
			t.Fatalf("tx %d: the signature holds over a changed issuer", i)
		}
	}
}
