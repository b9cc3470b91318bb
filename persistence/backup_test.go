package persistence_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/persistence"
)

// A stream of ~24 MiB that does not compress goes out in many chunks and
// more than one flow-control window, and comes back into another server
// with the same messages; a missing stream and an existing one are the
// sentinels.
func TestSnapshotRestoreStream(t *testing.T) {
	ctx := testCtx(t)
	src := natstest.Start(t)
	js := src.JetStream()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "s", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	const n, size = 48, 512 << 10
	want := make([][]byte, n)
	for i := range want {
		want[i] = make([]byte, size)
		_, _ = rand.Read(want[i])
		if _, err := js.Publish(ctx, fmt.Sprintf("s.%d", i%5), want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	var calls int
	var last int64
	snap, err := persistence.SnapshotStream(ctx, src.Conn(), "s", &buf, func(b int64) { calls, last = calls+1, b })
	if err != nil {
		t.Fatal(err)
	}
	if snap.Messages != n || snap.LastSeq != n || snap.FirstSeq != 1 || len(snap.Config) == 0 {
		t.Fatalf("snapshot: %+v, want %d messages", snap.StreamState, n)
	}
	if calls < 20 || last != int64(buf.Len()) || buf.Len() < n*size {
		t.Fatalf("snapshot: %d bytes in %d progress calls (last %d), want over %d bytes in 1 MiB chunks", buf.Len(), calls, last, n*size)
	}
	if _, err := persistence.SnapshotStream(ctx, src.Conn(), "none", &bytes.Buffer{}, nil); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("snapshot of a missing stream: %v, want ErrNotFound", err)
	}

	dst := natstest.Start(t)
	got, err := persistence.RestoreStream(ctx, dst.Conn(), "s", snap, bytes.NewReader(buf.Bytes()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Messages != n || got.LastSeq != n {
		t.Fatalf("restored: %+v, want %d messages", got, n)
	}
	st, err := dst.JetStream().Stream(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{1, n / 2, n} {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("restored message %d: %v", seq, err)
		}
		if !bytes.Equal(m.Data, want[seq-1]) || m.Subject != fmt.Sprintf("s.%d", (seq-1)%5) {
			t.Errorf("restored message %d: subject %q, data equal %v", seq, m.Subject, bytes.Equal(m.Data, want[seq-1]))
		}
	}
	if _, err := persistence.RestoreStream(ctx, dst.Conn(), "s", snap, bytes.NewReader(buf.Bytes()), nil); !errors.Is(err, persistence.ErrExists) {
		t.Errorf("restore over an existing stream: %v, want ErrExists", err)
	}
}
