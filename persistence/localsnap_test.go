package persistence_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/internal/natstest"
	"github.com/cairn-graph/cairn/internal/pace"
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
	for _, stray := range []string{c.Path + ".tmp", filepath.Join(dir, "junk.pack"), filepath.Join(dir, "README"),
		filepath.Join(dir, "00000000000000000099.pack")} {
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

// Copies are records appended to one pack, not a file each (creating a
// file costs the kernel a millisecond on the reference machine): 2,000
// saves write one file. A reopened LocalSnapshots lists the newest copy of
// each kind and graph, newest written first, and appends to a new pack.
func TestLocalSnapshotsShareAPack(t *testing.T) {
	dir := t.TempDir()
	l, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const graphs = 1000
	for round := uint64(1); round <= 2; round++ {
		for i := range graphs {
			g := fmt.Sprintf("g%04d", i)
			kind := persistence.KindReadModel
			if round == 2 {
				kind = persistence.KindAggregate
			}
			if err := l.Save(ctx, localInfo(t, kind, g, round), []byte(g), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if files := dirFiles(t, dir); len(files) != 1 {
		t.Fatalf("files %v, want one pack", files)
	}
	l, err = persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	copies := l.Scan()
	if len(copies) != 2*graphs {
		t.Fatalf("%d copies, want %d", len(copies), 2*graphs)
	}
	if c := copies[0]; c.Info.Kind != persistence.KindAggregate || c.Info.Graph != "g0999" {
		t.Fatalf("first copy listed %+v, want the last written", c.Info)
	}
	for _, c := range copies {
		if data, err := l.Load(c); err != nil || string(data) != c.Info.Graph {
			t.Fatalf("copy %s: %q, %v", c.Info.Name, data, err)
		}
	}
	if err := l.Save(ctx, localInfo(t, persistence.KindAggregate, "g0000", 3), []byte("new"), nil); err != nil {
		t.Fatal(err)
	}
	if files := dirFiles(t, dir); len(files) != 2 {
		t.Fatalf("files %v after a reopen's save, want a second pack", files)
	}
	if c := l.Scan()[0]; c.Info.Seq != 3 || c.Info.Graph != "g0000" {
		t.Fatalf("newest copy %+v", c.Info)
	}
}

// Packs rotate at their size bound; a pack whose copies were all
// superseded is deleted, and one mostly superseded has its live copies
// moved: the packs stay within about twice the live copies plus the
// current pack. A removal survives the cleaning of its pack (the pack
// holding the removed copy is gone by then), and a reopen lists what the
// open one did.
func TestLocalSnapshotsCleanPacks(t *testing.T) {
	dir := t.TempDir()
	l, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	const packMax = 8 << 10
	l.SetPackMax(packMax)
	ctx := context.Background()
	payload := func(g int, seq uint64) []byte { return bytes.Repeat([]byte{byte(g), byte(seq)}, 100+g) }
	const graphs = 20
	for seq := uint64(1); seq <= 30; seq++ {
		for g := range graphs {
			if g%2 == 1 && seq > 3 {
				continue // idle graphs: their copies are moved, not superseded
			}
			if err := l.Save(ctx, localInfo(t, persistence.KindAggregate, fmt.Sprint("g", g), seq), payload(g, seq), nil); err != nil {
				t.Fatal(err)
			}
		}
		if seq == 3 {
			l.Remove(localInfo(t, persistence.KindAggregate, "g1", 2)) // not its copy: nothing happens
			l.Remove(localInfo(t, persistence.KindAggregate, "g1", 3))
		}
		sizes, live := l.Packs()
		var total int64
		for _, n := range sizes {
			total += n
		}
		if total > 2*live+2*packMax {
			t.Fatalf("after round %d: packs %v (%d bytes) for %d live bytes", seq, sizes, total, live)
		}
	}
	if st := l.Stats(); st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(dirFiles(t, dir)); n > 6 {
		t.Fatalf("%d packs left", n)
	}
	check := func(l *persistence.LocalSnapshots) {
		t.Helper()
		copies := l.Scan()
		if len(copies) != graphs-1 {
			t.Fatalf("%d copies, want %d", len(copies), graphs-1)
		}
		for _, c := range copies {
			var g int
			fmt.Sscan(strings.TrimPrefix(c.Info.Graph, "g"), &g)
			want := uint64(30)
			if g%2 == 1 {
				want = 3
			}
			if g == 1 {
				t.Fatal("the removed copy of g1 came back")
			}
			data, err := l.Load(c)
			if err != nil || c.Info.Seq != want || !bytes.Equal(data, payload(g, want)) {
				t.Fatalf("copy %s (seq %d, want %d): %v", c.Info.Name, c.Info.Seq, want, err)
			}
		}
	}
	check(l)
	reopened, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	check(reopened)
}

// A record torn by a crash (the pack cut short in its payload) ends its
// pack's scan: the copies before it are listed, and a save after the
// reopen goes to a new pack. A save after the directory was deleted
// starts it again.
func TestLocalSnapshotsTornPack(t *testing.T) {
	dir := t.TempDir()
	l, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, g := range []string{"a", "b", "c"} {
		if err := l.Save(ctx, localInfo(t, persistence.KindAggregate, g, 1), bytes.Repeat([]byte(g), 500), nil); err != nil {
			t.Fatal(err)
		}
	}
	c := l.Scan()[0] // c's, the last record
	if err := os.Truncate(c.Path, c.Offset+c.Length-10); err != nil {
		t.Fatal(err)
	}
	l, err = persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Scan(); len(got) != 2 || got[0].Info.Graph != "b" || got[1].Info.Graph != "a" {
		t.Fatalf("after the tear: %+v", got)
	}
	if err := l.Save(ctx, localInfo(t, persistence.KindAggregate, "c", 2), []byte("c2"), nil); err != nil {
		t.Fatal(err)
	}
	if got := l.Scan(); len(got) != 3 || got[0].Info.Graph != "c" || got[0].Path == c.Path {
		t.Fatalf("after a save: %+v", got)
	}
	// The copies are a cache: their directory may go while the engine runs.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(ctx, localInfo(t, persistence.KindAggregate, "d", 1), []byte("d"), nil); err != nil {
		t.Fatal(err)
	}
	if got := l.Scan(); len(got) != 1 || got[0].Info.Graph != "d" {
		t.Fatalf("after the directory was deleted: %+v", got)
	}
}

func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A copy larger than a MiB is written through the pacing gate; one whose
// write is stopped (ctx ends while it waits for the gate) is cut off the
// pack, so that the copies after it are found by a reopen.
func TestLocalSnapshotsLargeCopyThroughTheGate(t *testing.T) {
	dir := t.TempDir()
	l, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	gate, err := pace.New(pace.Config{Slots: 1, Duty: 1, Slice: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 160_001) // 2.5 MiB and a bit
	ctx := context.Background()
	if err := l.Save(ctx, localInfo(t, persistence.KindReadModel, "big", 1), big, gate); err != nil {
		t.Fatal(err)
	}
	held, err := gate.Begin(ctx) // the gate's only slot: the next big save waits
	if err != nil {
		t.Fatal(err)
	}
	stopped, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.Save(stopped, localInfo(t, persistence.KindReadModel, "big", 2), big, gate); err == nil {
		t.Fatal("a save whose context ended waiting for the gate succeeded")
	}
	held.End()
	if err := l.Save(ctx, localInfo(t, persistence.KindAggregate, "small", 1), []byte("small"), gate); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Saves != 2 || st.Errors != 1 {
		t.Fatalf("stats %+v", st)
	}
	reopened, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := reopened.Scan()
	if len(got) != 2 || got[0].Info.Graph != "small" || got[1].Info.Seq != 1 {
		t.Fatalf("copies %+v", got)
	}
	if data, err := reopened.Load(got[1]); err != nil || !bytes.Equal(data, big) {
		t.Fatalf("the big copy: %d bytes, %v", len(data), err)
	}
}

// A large copy (over the 1 MiB chunk) in a mostly superseded pack is moved
// to the current pack a chunk at a time and loads whole afterwards, also
// after a reopen; the old pack is deleted.
func TestLocalSnapshotsEvacuateLargeCopy(t *testing.T) {
	dir := t.TempDir()
	l, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.SetPackMax(4 << 20)
	ctx := context.Background()
	big := make([]byte, 2<<20+12345)
	for i := range big {
		big[i] = byte(i ^ i>>8 ^ i>>16) // unlike at any other offset in the chunk
	}
	fill := func(seq uint64) []byte { return bytes.Repeat([]byte{byte(seq)}, 3<<20) }
	if err := l.Save(ctx, localInfo(t, persistence.KindReadModel, "big", 1), big, nil); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 2; seq++ { // the second supersedes the first in a new pack
		if err := l.Save(ctx, localInfo(t, persistence.KindAggregate, "x", seq), fill(seq), nil); err != nil {
			t.Fatal(err)
		}
	}
	if sizes, _ := l.Packs(); len(sizes) != 1 {
		t.Fatalf("packs %v: want the first deleted once its big copy moved", sizes)
	}
	for _, l := range []*persistence.LocalSnapshots{l, reopen(t, dir)} {
		copies := l.Scan()
		if len(copies) != 2 {
			t.Fatalf("%d copies, want 2", len(copies))
		}
		for _, c := range copies {
			want := fill(2)
			if c.Info.Graph == "big" {
				want = big
			}
			if data, err := l.Load(c); err != nil || !bytes.Equal(data, want) {
				t.Fatalf("copy %s: %d bytes, %v", c.Info.Name, len(data), err)
			}
		}
	}
	if st := l.Stats(); st.Errors != 0 || st.Saves != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func reopen(t *testing.T, dir string) *persistence.LocalSnapshots {
	t.Helper()
	l, err := persistence.OpenLocalSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
