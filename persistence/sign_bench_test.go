package persistence_test

import (
	"fmt"
	"testing"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// benchTx seals n benchEvents onto a mid-chain head as one transaction of
// one command, as a grain does.
func benchTx(b *testing.B, n int) (*cairnv1.Transaction, persistence.Head) {
	b.Helper()
	env := benchEnvelope(b)
	head := persistence.Head{N: env.N - 1, CID: env.Prev}
	evs := make([]*cairnv1.Event, n)
	for i := range evs {
		evs[i] = benchEvent()
	}
	recs, _, err := persistence.Seal(env.Graph, env.Tx, env.TS, head, evs)
	if err != nil {
		b.Fatal(err)
	}
	return &cairnv1.Transaction{GraphId: env.Graph, TxId: env.Tx, TimestampUnixNano: env.TS, Events: recs,
		Commands: []*cairnv1.CommandRecord{{CommandId: "cmd-0123456789", CorrelationId: "corr", Issuer: "bench", EventCount: uint32(n)}}}, head
}

// BenchmarkSealSigned is the write path's cost of signing: "unsigned" seals
// a transaction of 1 or 10 events as a grain does without a signer,
// "signed" seals and signs it (one ed25519 signature per transaction).
func BenchmarkSealSigned(b *testing.B) {
	signer := newTestSigner(b)
	for _, n := range []int{1, 10} {
		tx, head := benchTx(b, n)
		evs := make([]*cairnv1.Event, n)
		for i := range evs {
			evs[i] = benchEvent()
		}
		for _, signed := range []bool{false, true} {
			name := fmt.Sprintf("events=%d/unsigned", n)
			if signed {
				name = fmt.Sprintf("events=%d/signed", n)
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					recs, _, err := persistence.Seal(tx.GraphId, tx.TxId, tx.TimestampUnixNano, head, evs)
					if err != nil {
						b.Fatal(err)
					}
					out := &cairnv1.Transaction{GraphId: tx.GraphId, TxId: tx.TxId, TimestampUnixNano: tx.TimestampUnixNano, Events: recs, Commands: tx.Commands}
					if signed {
						if err := signer.SignTransaction(out); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkChainCheckSigned is the replay path's cost of checking
// signatures: Chain.Check of one transaction of 1 or 10 events without a
// keyring ("unchecked") and with one ("signed": the signature verified).
func BenchmarkChainCheckSigned(b *testing.B) {
	signer := newTestSigner(b)
	trust := mustKeyring(b, signer.KeyID())
	for _, n := range []int{1, 10} {
		tx, head := benchTx(b, n)
		if err := signer.SignTransaction(tx); err != nil {
			b.Fatal(err)
		}
		for _, checked := range []bool{false, true} {
			name, opts := fmt.Sprintf("events=%d/unchecked", n), []persistence.ChainOption(nil)
			if checked {
				name, opts = fmt.Sprintf("events=%d/signed", n), []persistence.ChainOption{persistence.WithTrust(trust)}
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c := persistence.NewChainAt(tx.GraphId, head, opts...)
					if _, err := c.Check(1, tx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
