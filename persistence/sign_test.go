package persistence_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// newTestSigner returns a signer of a fresh key.
func newTestSigner(t testing.TB) *persistence.Signer {
	t.Helper()
	seed, err := persistence.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := persistence.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKeyring(t testing.TB, ids ...string) *persistence.Keyring {
	t.Helper()
	k, err := persistence.NewKeyring(ids...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signedChain is buildChain's chain, each transaction signed by s.
func signedChain(t testing.TB, graph string, s *persistence.Signer) []*cairnv1.Transaction {
	t.Helper()
	txs, _ := mustBuildChain(t, graph)
	for _, tx := range txs {
		if err := s.SignTransaction(tx); err != nil {
			t.Fatal(err)
		}
	}
	return txs
}

// checkAll runs txs through a chain with opts and returns the first error.
func checkAll(txs []*cairnv1.Transaction, opts ...persistence.ChainOption) error {
	c := persistence.NewChain(chainGraph, opts...)
	for i, tx := range txs {
		if _, err := c.Check(chainSeq(i), tx); err != nil {
			return err
		}
	}
	return nil
}

func TestChainCheckSignature(t *testing.T) {
	signer, other := newTestSigner(t), newTestSigner(t)
	trust := mustKeyring(t, signer.KeyID())
	if err := checkAll(signedChain(t, chainGraph, signer), persistence.WithTrust(trust)); err != nil {
		t.Fatalf("signed chain with trust: %v", err)
	}
	unsigned, _ := mustBuildChain(t, chainGraph)
	if err := checkAll(unsigned); err != nil {
		t.Fatalf("unsigned chain without trust: %v", err)
	}
	if err := checkAll(unsigned, persistence.WithTrust(nil)); err != nil {
		t.Fatalf("unsigned chain with a nil keyring: %v", err)
	}
	// Each case edits transaction 1 (seq 20) of a signed chain.
	cases := []struct {
		name   string
		edit   func(tx *cairnv1.Transaction)
		reason string
	}{
		{"no signature", func(tx *cairnv1.Transaction) { tx.Signature, tx.KeyId = nil, "" }, "signature missing"},
		{"signature without key id", func(tx *cairnv1.Transaction) { tx.KeyId = "" }, "signature has no key id"},
		{"untrusted key", func(tx *cairnv1.Transaction) {
			if err := other.SignTransaction(tx); err != nil {
				t.Fatal(err)
			}
		}, "signature by a key that is not trusted: " + other.KeyID()},
		{"other key's signature, trusted key id", func(tx *cairnv1.Transaction) {
			if err := other.SignTransaction(tx); err != nil {
				t.Fatal(err)
			}
			tx.KeyId = signer.KeyID()
		}, "signature does not hold"},
		{"flipped signature bit", func(tx *cairnv1.Transaction) { tx.Signature[7] ^= 1 }, "signature does not hold"},
		{"short signature", func(tx *cairnv1.Transaction) { tx.Signature = tx.Signature[:63] }, "signature does not hold"},
		{"issuer changed", func(tx *cairnv1.Transaction) { tx.Commands[0].Issuer = "attacker" }, "signature does not hold"},
		{"command id changed", func(tx *cairnv1.Transaction) { tx.Commands[1].CommandId = "x" }, "signature does not hold"},
		{"correlation id changed", func(tx *cairnv1.Transaction) { tx.Commands[0].CorrelationId = "" }, "signature does not hold"},
		{"event counts moved", func(tx *cairnv1.Transaction) { tx.Commands[0].EventCount, tx.Commands[1].EventCount = 2, 1 }, "signature does not hold"},
		{"command dropped", func(tx *cairnv1.Transaction) {
			tx.Commands = tx.Commands[1:]
			tx.Commands[0].EventCount = 3
		}, "signature does not hold"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			txs := signedChain(t, chainGraph, signer)
			c.edit(txs[1])
			err := checkAll(txs, persistence.WithTrust(trust))
			var ce *persistence.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, persistence.ErrSignature) || !errors.Is(err, persistence.ErrChainBroken) {
				t.Fatalf("got %v, want a *ChainError wrapping ErrSignature and ErrChainBroken", err)
			}
			if ce.Seq != chainSeq(1) || !strings.HasPrefix(ce.Reason, "signature") || !strings.Contains(ce.Reason, c.reason) {
				t.Errorf("got seq %d reason %q, want seq %d and %q", ce.Seq, ce.Reason, chainSeq(1), c.reason)
			}
			// Without a keyring, the same transactions pass: unsigned
			// engines are unchanged.
			if err := checkAll(txs); err != nil {
				t.Errorf("without trust: %v", err)
			}
		})
	}
}

// TestChainCheckUnsignedThrough: unsigned history before signing began is
// accepted up to its sequence only, and a signature that is there is
// checked all the same.
func TestChainCheckUnsignedThrough(t *testing.T) {
	signer := newTestSigner(t)
	txs, _ := mustBuildChain(t, chainGraph)
	if err := signer.SignTransaction(txs[2]); err != nil {
		t.Fatal(err)
	}
	trust := mustKeyring(t, signer.KeyID())
	trust.AllowUnsignedThrough(chainSeq(1))
	if err := checkAll(txs, persistence.WithTrust(trust)); err != nil {
		t.Fatalf("unsigned through seq %d, signed after: %v", chainSeq(1), err)
	}
	trust.AllowUnsignedThrough(chainSeq(0))
	var ce *persistence.ChainError
	if err := checkAll(txs, persistence.WithTrust(trust)); !errors.As(err, &ce) || ce.Seq != chainSeq(1) || ce.Reason != "signature missing" {
		t.Fatalf("unsigned through seq %d: %v, want signature missing at seq %d", chainSeq(0), err, chainSeq(1))
	}
	txs[0].Signature, txs[0].KeyId = []byte("not a signature"), signer.KeyID()
	trust.AllowUnsignedThrough(chainSeq(2))
	if err := checkAll(txs, persistence.WithTrust(trust)); !errors.As(err, &ce) || ce.Seq != chainSeq(0) {
		t.Fatalf("a bad signature within the unsigned range: %v, want refused at seq %d", err, chainSeq(0))
	}
}

// TestKeyRotation: history signed by an old key and then a new one verifies
// with both trusted; without the old key its transactions are refused,
// naming the key.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := newTestSigner(t), newTestSigner(t)
	txs, _ := mustBuildChain(t, chainGraph)
	for i, tx := range txs {
		s := oldKey
		if i == 2 {
			s = newKey
		}
		if err := s.SignTransaction(tx); err != nil {
			t.Fatal(err)
		}
	}
	k, err := persistence.ReadKeyring(strings.NewReader(fmt.Sprintf("# keys of cairn\n\n%s # since 2026-12\n  %s   # before the rotation\n", newKey.KeyID(), oldKey.KeyID())))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAll(txs, persistence.WithTrust(k)); err != nil {
		t.Fatalf("both keys trusted: %v", err)
	}
	var ce *persistence.ChainError
	if err := checkAll(txs, persistence.WithTrust(mustKeyring(t, newKey.KeyID()))); !errors.As(err, &ce) || ce.Seq != chainSeq(0) || !strings.Contains(ce.Reason, oldKey.KeyID()) {
		t.Fatalf("new key only: %v, want seq %d refused naming %s", err, chainSeq(0), oldKey.KeyID())
	}
	if err := checkAll(txs, persistence.WithTrust(mustKeyring(t, oldKey.KeyID()))); !errors.As(err, &ce) || ce.Seq != chainSeq(2) {
		t.Fatalf("old key only: %v, want seq %d refused", err, chainSeq(2))
	}
}

func TestKeyringParse(t *testing.T) {
	s := newTestSigner(t)
	seed, _ := persistence.NewSigningKey()
	for _, bad := range []string{"nonsense", string(seed), s.KeyID()[:20], "U" + s.KeyID()[1:]} {
		if _, err := persistence.ReadKeyring(strings.NewReader("# c\n" + bad + "\n")); !errors.Is(err, persistence.ErrKey) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("keyring with %q: %v, want ErrKey on line 2", bad, err)
		}
	}
	if _, err := persistence.NewSigner([]byte(s.KeyID())); !errors.Is(err, persistence.ErrKey) {
		t.Errorf("a public key as a seed: %v, want ErrKey", err)
	}
}

// FuzzCheckSignature mutates a signed transaction's signature, key id and
// the command records that only the signature covers: the trusted chain
// accepts it only when nothing changed.
func FuzzCheckSignature(f *testing.F) {
	signer := newTestSigner(f)
	trust := mustKeyring(f, signer.KeyID())
	base := signedChain(f, chainGraph, signer)
	f.Add(base[1].GetSignature(), signer.KeyID(), "test", uint32(1), "corr")
	f.Add([]byte{}, "", "test", uint32(1), "corr")
	f.Add(base[1].GetSignature(), signer.KeyID(), "attacker", uint32(1), "corr")
	f.Add(bytes.Repeat([]byte{0}, 64), signer.KeyID(), "test", uint32(2), "corr")
	f.Fuzz(func(t *testing.T, sig []byte, keyID, issuer string, count uint32, corr string) {
		txs := signedChain(t, chainGraph, signer)
		tx := txs[1]
		tx.Signature, tx.KeyId = sig, keyID
		tx.Commands[0].Issuer, tx.Commands[0].CorrelationId = issuer, corr
		tx.Commands[0].EventCount, tx.Commands[1].EventCount = count, 3-count
		unchanged := bytes.Equal(sig, base[1].GetSignature()) && keyID == signer.KeyID() && issuer == "test" && corr == "corr" && count == 1
		c := persistence.NewChain(chainGraph, persistence.WithTrust(trust))
		if _, err := c.Check(chainSeq(0), txs[0]); err != nil {
			t.Fatal(err)
		}
		_, err := c.Check(chainSeq(1), tx)
		if unchanged != (err == nil) {
			t.Fatalf("unchanged %v, check: %v", unchanged, err)
		}
		var ce *persistence.ChainError
		if err != nil && (!errors.As(err, &ce) || ce.Seq != chainSeq(1)) {
			t.Fatalf("error %v is not a *ChainError at seq %d", err, chainSeq(1))
		}
		if err != nil && c.Head().N != 2 {
			t.Fatalf("the chain advanced past a refused transaction: head %d", c.Head().N)
		}
	})
}

// TestForgedTransactionInStream is the "Forge" attack: a correctly chained
// transaction built with Seal and published straight to the stream, with
// no signature or another key's. A store with the engine's keyring refuses
// it in Verify, naming its seq; one without accepts it (unsigned engines).
func TestForgedTransactionInStream(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	js := srv.JetStream()
	engineKey, attackerKey := newTestSigner(t), newTestSigner(t)
	trust := mustKeyring(t, engineKey.KeyID())
	st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig(), persistence.WithSigning(engineKey, trust))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, attack := range []string{"unsigned", "attacker key"} {
		graph := strings.ReplaceAll(attack, " ", "-")
		w := &chainWriter{graph: graph}
		appendSigned(t, st, w, engineKey, 3)
		// The forger: a valid chain link onto the head, issuer "attacker".
		tx, _, err := sealTx(graph, graph+"-forged", time.Now().UnixNano(), w.head, []*cairnv1.Event{nodeAdded("evil")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx.Commands[0].Issuer = "attacker"
		if attack == "attacker key" {
			if err := attackerKey.SignTransaction(tx); err != nil {
				t.Fatal(err)
			}
		}
		data, err := proto.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, st.Subject(graph), data)
		if err != nil {
			t.Fatal(err)
		}
		res, err := st.Verify(ctx, graph)
		var ce *persistence.ChainError
		if !errors.As(err, &ce) || !errors.Is(err, persistence.ErrSignature) || ce.Seq != ack.Sequence {
			t.Fatalf("%s: verify with trust = %+v, %v; want the forged seq %d refused", attack, res, err, ack.Sequence)
		}
		if res.Transactions != 3 {
			t.Errorf("%s: %d transactions checked before the forgery, want 3", attack, res.Transactions)
		}
		res, err = plain.Verify(ctx, graph)
		if err != nil || res.Transactions != 4 || res.Signed != 3+boolInt(attack == "attacker key") {
			t.Errorf("%s: verify without trust = %+v, %v; want 4 transactions accepted", attack, res, err)
		}
		wantKeys := engineKey.KeyID()
		if attack == "attacker key" {
			wantKeys = strings.Join(mustKeyring(t, engineKey.KeyID(), attackerKey.KeyID()).IDs(), " ")
		}
		if res.KeyIDs != wantKeys {
			t.Errorf("%s: key ids %q, want %q", attack, res.KeyIDs, wantKeys)
		}
	}
}

// appendSigned appends n transactions of one event to w's graph, each
// signed by signer.
func appendSigned(t *testing.T, st *persistence.Store, w *chainWriter, signer *persistence.Signer, n int) {
	t.Helper()
	for range n {
		id := fmt.Sprintf("%s-tx-%d", w.graph, w.n)
		tx, head, err := sealTx(w.graph, id, time.Now().UnixNano(), w.head, []*cairnv1.Event{nodeAdded(id)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := signer.SignTransaction(tx); err != nil {
			t.Fatal(err)
		}
		w.last = mustAppend(t, testCtx(t), st, w.graph, w.last, tx)
		w.head = head
		w.n++
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestForgedSnapshot is the "Forged snapshot" attack: a snapshot's payload
// replaced with its metadata kept is refused by Get, signed or not; one
// whose digest the attacker recomputed too is refused where signatures are
// checked.
func TestForgedSnapshot(t *testing.T) {
	ctx := testCtx(t)
	srv := natstest.Start(t)
	signer, other := newTestSigner(t), newTestSigner(t)
	cfg := persistence.DefaultSnapshotConfig()
	cfg.Signer = signer
	ss, err := persistence.OpenSnapshots(ctx, srv.JetStream(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Signer, cfg.Trust = nil, mustKeyring(t, signer.KeyID())
	checked, err := persistence.LookupSnapshots(ctx, srv.JetStream(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("the true state ", 100))
	forged := []byte(strings.Repeat("a forged state ", 100))
	info := mustPut(t, ctx, ss, persistence.KindAggregate, "g", 5, data)
	if info.KeyID != signer.KeyID() {
		t.Errorf("put: key id %q, want %q", info.KeyID, signer.KeyID())
	}
	for _, s := range []*persistence.Snapshots{ss, checked} {
		if got, err := s.Get(ctx, info); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get the true snapshot: %v", err)
		}
	}
	oi, err := ss.Objects().GetInfo(ctx, info.Name)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(payload []byte, edit func(map[string]string)) {
		t.Helper()
		md := map[string]string{}
		for k, v := range oi.Metadata {
			md[k] = v
		}
		if edit != nil {
			edit(md)
		}
		enc, err := zstdEncode(payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Objects().Put(ctx, jetstream.ObjectMeta{Name: info.Name, Metadata: md}, bytes.NewReader(enc)); err != nil {
			t.Fatal(err)
		}
	}
	// Same size, so that only the digest tells.
	replace(forged, nil)
	for name, s := range map[string]*persistence.Snapshots{"unchecked": ss, "checked": checked} {
		got, err := s.Get(ctx, persistence.SnapshotInfo{Name: info.Name})
		if !errors.Is(err, persistence.ErrMalformed) || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("%s: payload replaced, metadata kept: %q, %v; want the digest mismatch", name, got, err)
		}
	}
	sum := sha256.Sum256(forged)
	replace(forged, func(md map[string]string) { md[persistence.MetaPayloadSHA256] = hex.EncodeToString(sum[:]) })
	if _, err := checked.Get(ctx, persistence.SnapshotInfo{Name: info.Name}); !errors.Is(err, persistence.ErrSignature) {
		t.Errorf("payload and digest replaced: %v, want ErrSignature", err)
	}
	// Signed by another key: refused by the checked reader.
	cfg.Signer, cfg.Trust = other, nil
	rogue, err := persistence.LookupSnapshots(ctx, srv.JetStream(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, ctx, rogue, persistence.KindAggregate, "g", 5, forged)
	if _, err := checked.Get(ctx, persistence.SnapshotInfo{Name: info.Name}); !errors.Is(err, persistence.ErrSignature) || !strings.Contains(err.Error(), other.KeyID()) {
		t.Errorf("signed by another key: %v, want ErrSignature naming it", err)
	}
	// Metadata moved to another seq with the payload kept: the signature
	// covers the seq and head.
	mustPut(t, ctx, ss, persistence.KindAggregate, "g", 5, data)
	oi, err = ss.Objects().GetInfo(ctx, info.Name)
	if err != nil {
		t.Fatal(err)
	}
	md := map[string]string{}
	for k, v := range oi.Metadata {
		md[k] = v
	}
	md["seq"] = "6"
	enc, _ := zstdEncode(data)
	name6 := persistence.SnapshotName(persistence.KindAggregate, "g", 6)
	if _, err := ss.Objects().Put(ctx, jetstream.ObjectMeta{Name: name6, Metadata: md}, bytes.NewReader(enc)); err != nil {
		t.Fatal(err)
	}
	if _, err := checked.Get(ctx, persistence.SnapshotInfo{Name: name6}); !errors.Is(err, persistence.ErrSignature) {
		t.Errorf("a signed snapshot copied to another seq: %v, want ErrSignature", err)
	}
}

// TestForgedArchive: an archive object whose payload is replaced with its
// metadata kept is refused by every read across it; a re-signed one by
// another key where signatures are checked.
func TestForgedArchive(t *testing.T) {
	ctx := testCtx(t)
	signer := newTestSigner(t)
	trust := mustKeyring(t, signer.KeyID())
	srv := natstest.Start(t)
	js := srv.JetStream()
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: persistence.DefaultObjectBucket, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	st, err := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig(), persistence.WithObjects(obj), persistence.WithSigning(signer, trust))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := persistence.LookupStore(ctx, js, persistence.DefaultStoreConfig(), persistence.WithObjects(obj))
	if err != nil {
		t.Fatal(err)
	}
	w := &chainWriter{graph: "g"}
	appendSigned(t, st, w, signer, 6)
	res, err := st.Archive(ctx, "g", w.last, nil)
	if err != nil || len(res.Objects) != 1 {
		t.Fatalf("archive: %+v, %v", res, err)
	}
	name := res.Objects[0].Name
	oi, err := obj.GetInfo(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if oi.Metadata[persistence.MetaSigKey] != signer.KeyID() || oi.Metadata[persistence.MetaSig] == "" || oi.Metadata[persistence.MetaPayloadSHA256] == "" {
		t.Fatalf("archive metadata %v has no signature", oi.Metadata)
	}
	for _, s := range []*persistence.Store{st, plain} {
		if _, err := s.Verify(ctx, "g"); err != nil {
			t.Fatalf("verify the true archive: %v", err)
		}
	}
	raw, err := obj.GetBytes(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstdDecode(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte of a component value inside the payload: decodes, same
	// size, and the attacker keeps the metadata.
	i := bytes.LastIndex(dec, []byte("g-tx-1"))
	dec[i+4] = 'X'
	enc, err := zstdEncode(dec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Put(ctx, jetstream.ObjectMeta{Name: name, Metadata: oi.Metadata}, bytes.NewReader(enc)); err != nil {
		t.Fatal(err)
	}
	for n, s := range map[string]*persistence.Store{"checked": st, "unchecked": plain} {
		if _, err := s.Verify(ctx, "g"); !errors.Is(err, persistence.ErrMalformed) || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("%s: verify a replaced archive payload: %v, want the digest mismatch", n, err)
		}
		if _, err := s.Read(ctx, "g", 1, func(persistence.Record) error { return nil }); err == nil {
			t.Errorf("%s: read across a replaced archive payload succeeded", n)
		}
	}
	// Digest recomputed, signature kept: refused where signatures count.
	sum := sha256.Sum256(dec)
	md := map[string]string{}
	for k, v := range oi.Metadata {
		md[k] = v
	}
	md[persistence.MetaPayloadSHA256] = hex.EncodeToString(sum[:])
	if _, err := obj.Put(ctx, jetstream.ObjectMeta{Name: name, Metadata: md}, bytes.NewReader(enc)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Verify(ctx, "g"); !errors.Is(err, persistence.ErrSignature) {
		t.Errorf("digest recomputed: %v, want ErrSignature", err)
	}
}

func zstdEncode(b []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil), nil
}

func zstdDecode(b []byte) ([]byte, error) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(b, nil)
}

// A SignedSet vouches once for each transaction its process signed; a
// transaction whose signature bytes differ from what was signed, one the
// set has already vouched for, or one evicted is verified in full.
func TestSignedSetVouches(t *testing.T) {
	set := persistence.NewSignedSet(2)
	signer := newTestSigner(t).Remembering(set)
	trust := mustKeyring(t, signer.KeyID())
	trust.Vouching(set)
	txs := signedChain(t, chainGraph, signer) // more transactions than the set holds
	if err := checkAll(txs, persistence.WithTrust(trust)); err != nil {
		t.Fatalf("signed chain: %v", err)
	}
	if got := set.Hits(); got != 2 {
		t.Fatalf("the set vouched for %d transactions, want the last 2 (the older ones evicted)", got)
	}
	// Vouched for once only: a second read verifies in full, and passes.
	if err := checkAll(txs, persistence.WithTrust(trust)); err != nil || set.Hits() != 2 {
		t.Fatalf("second read: %v, hits %d", err, set.Hits())
	}
	// The same content with another signature is not vouched for: the
	// signature is verified, and fails.
	txs = signedChain(t, chainGraph, signer)
	last := txs[len(txs)-1]
	last.Signature = append([]byte(nil), last.Signature...)
	last.Signature[0] ^= 1
	err := checkAll(txs, persistence.WithTrust(trust))
	if !errors.Is(err, persistence.ErrSignature) {
		t.Fatalf("tampered signature: err = %v, want ErrSignature", err)
	}
}

// CheckStretchTrusting answers as CheckStretch with WithTrust: the same
// events and heads for a signed stretch and a trusted key, ErrSignature
// for a key it does not trust, and no check at all with a nil keyring.
func TestCheckStretchTrustingAsCheckStretch(t *testing.T) {
	signer, other := newTestSigner(t), newTestSigner(t)
	txs := signedChain(t, chainGraph, signer)
	for _, trust := range []*persistence.Keyring{mustKeyring(t, signer.KeyID()), mustKeyring(t, other.KeyID()), nil} {
		for i, tx := range txs {
			evs, prev, head, err := persistence.CheckStretch(chainGraph, chainSeq(i), tx, persistence.WithTrust(trust))
			evs2, prev2, head2, err2 := persistence.CheckStretchTrusting(trust, chainGraph, chainSeq(i), tx)
			if (err == nil) != (err2 == nil) || errors.Is(err, persistence.ErrSignature) != errors.Is(err2, persistence.ErrSignature) {
				t.Fatalf("tx %d: CheckStretch: %v, CheckStretchTrusting: %v", i, err, err2)
			}
			if trust != nil && trust.Trusts(other.KeyID()) && !errors.Is(err2, persistence.ErrSignature) {
				t.Fatalf("tx %d: a key not trusted passed: %v", i, err2)
			}
			if err != nil {
				continue
			}
			if len(evs) != len(evs2) || prev != prev2 || head != head2 {
				t.Fatalf("tx %d: %d events %v→%v, want %d events %v→%v", i, len(evs2), prev2, head2, len(evs), prev, head)
			}
			for k := range evs {
				if !proto.Equal(evs[k].Event, evs2[k].Event) || !evs[k].CID.Equals(evs2[k].CID) {
					t.Fatalf("tx %d event %d differs", i, k)
				}
			}
		}
	}
}
