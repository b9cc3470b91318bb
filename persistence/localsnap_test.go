package persistence_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/persistence"
)

func localInfo(t *testing.T, kind persistence.SnapshotKind, graph string, seq uint64) persistence.SnapshotInfo {
	return persistence.SnapshotInfo{Kind: kind, Graph: graph, Seq: seq, Position: seq * 2, Head: testHead(t, seq*2), Format: 2,
		Name: persistence.SnapshotName(kind, graph, seq)}
}

// A copy reads back whole; only the newest of a kind and graph is kept;
// Remove takes it away.
func TestLocalSnapshotsRoundTrip(t *testing.T) {
	l, err := persistence.OpenLocalSnapshots(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A graph id is one path element, hex-encoded.
	graph := "deps-v2_x"
	for seq := uint64(1); seq <= 3; seq++ {
		if err := l.Save(context.Background(), localInfo(t, persistence.KindAggregate, graph, seq), bytes.Repeat([]byte{byte(seq)}, 1000+int(seq)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Save(context.Background(), localInfo(t, persistence.KindReadModel, graph, 2), []byte("read model"), nil); err != nil {
		t.Fatal(err)
	}
	copies := l.Scan()
	if len(copies) != 2 {
		t.Fatalf("%d copies, want 2 (the newest aggregate and the read model): %+v", len(copies), copies)
	}
	for _, c := range copies {
		data, err := l.Load(c)
		if err != nil {
			t.Fatal(err)
		}
		switch c.Info.Kind {
		case persistence.KindAggregate:
			want := localInfo(t, persistence.KindAggregate, graph, 3)
			want.Size = 1003
			if !c.Matches(want) || c.Info.Name != want.Name || !bytes.Equal(data, bytes.Repeat([]byte{3}, 1003)) {
				t.Fatalf("aggregate copy %+v (%d bytes), want seq 3's", c.Info, len(data))
			}
			other := want
			other.Head = testHead(t, 99)
			if c.Matches(other) {
				t.Fatal("a copy matches a snapshot with another head")
			}
			other = want
			other.Size = 7
			if c.Matches(other) {
				t.Fatal("a copy matches a snapshot of another size")
			}
		case persistence.KindReadModel:
			if string(data) != "read model" {
				t.Fatalf("read-model copy holds %q", data)
			}
		}
	}
	l.Remove(localInfo(t, persistence.KindAggregate, graph, 3))
	if got := l.Scan(); len(got) != 1 || got[0].Info.Kind != persistence.KindReadModel {
		t.Fatalf("after Remove: %+v", got)
	}
}

// A damaged copy is refused by Load, naming the problem: a truncated
// file, no magic, a header naming another snapshot (a flipped payload byte
// is the format's own CRC's to catch: TestRestartTakesLocalSnapshotCopies).
// Copies of other kinds than aggregate states and read models are not kept.
// Leftovers of a torn write and stray files are not listed.
func TestLocalSnapshotsRefuseDamage(t *testing.T) {
	dir := t.TempDir()
	l, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("state "), 500)
	if err := l.Save(context.Background(), localInfo(t, persistence.KindAggregate, "g", 5), payload, nil); err != nil {
		t.Fatal(err)
	}
	c := l.Scan()[0]
	orig, err := os.ReadFile(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"truncated", orig[:len(orig)-100], "payload bytes"},
		{"no magic", append([]byte("XXXXXXXX"), orig[8:]...), "not a local snapshot copy"},
		{"header of another snapshot", bytes.Replace(orig, []byte(`"seq":5`), []byte(`"seq":6`), 1), "changed since it was listed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(c.Path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := l.Load(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if err := os.WriteFile(c.Path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(context.Background(), localInfo(t, persistence.KindManifest, "projections", 5), payload, nil); err == nil ||
		!strings.Contains(err.Error(), "no copies of manifest snapshots") {
		t.Fatalf("save of a manifest: %v, want a refusal naming the kind", err)
	}
	for _, stray := range []string{c.Path + ".tmp", filepath.Join(filepath.Dir(c.Path), "junk.snap"), filepath.Join(dir, "README")} {
		if err := os.WriteFile(stray, []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Scan(); len(got) != 1 || got[0].Path != c.Path {
		t.Fatalf("Scan lists %+v, want only the copy", got)
	}
	if _, err := l.Load(c); err != nil {
		t.Fatalf("the restored copy: %v", err)
	}
}

// Snapshots with a Local keeps a copy of what Put stored and loses it
// when the snapshot is deleted or pruned.
func TestSnapshotsKeepLocalCopies(t *testing.T) {
	srv := natstest.Start(t)
	l, err := persistence.OpenLocalSnapshots(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := persistence.DefaultSnapshotConfig()
	cfg.Local = l
	ss, err := persistence.OpenSnapshots(context.Background(), srv.JetStream(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var stored []persistence.SnapshotInfo
	for seq := uint64(1); seq <= 3; seq++ {
		info, err := ss.Put(ctx, localInfo(t, persistence.KindAggregate, "g", seq), bytes.Repeat([]byte{byte(seq)}, 4096))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, info)
	}
	copies := l.Scan()
	if len(copies) != 1 || !copies[0].Matches(stored[2]) {
		t.Fatalf("copies %+v, want seq 3's", copies)
	}
	if data, err := l.Load(copies[0]); err != nil || !bytes.Equal(data, bytes.Repeat([]byte{3}, 4096)) {
		t.Fatalf("the copy: %v", err)
	}
	if n, err := ss.Prune(ctx, persistence.KindAggregate, "g", 1); err != nil || n != 2 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if got := l.Scan(); len(got) != 1 {
		t.Fatalf("pruning the older snapshots removed the newest's copy: %+v", got)
	}
	if err := ss.Delete(ctx, stored[2]); err != nil {
		t.Fatal(err)
	}
	if got := l.Scan(); len(got) != 0 {
		t.Fatalf("after deleting the snapshot, copies %+v", got)
	}
	if st := l.Stats(); st.Saves != 3 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}
