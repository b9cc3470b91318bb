package persistence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// snapIndex finds a graph's snapshots without listing the bucket: a
// JetStream Key-Value bucket "<bucket>-index" with one key per kind and
// graph, "<kind>.<graph in unpadded base64url>", whose value is the stream
// sequences of that graph's snapshot objects, newest first (a JSON array).
// The object names follow from them (SnapshotName).
//
// The objects are the truth; the index only says where to look, and errs
// on the side of naming too much:
//
//   - Put adds the sequence before it stores the object, so a crash in
//     between leaves an entry without an object, never an object without
//     an entry. Delete removes the sequence after the object is gone.
//   - List reads the metadata of every object an entry names and leaves
//     out the ones not found (counted in SnapshotStats.IndexStale): a
//     reader falls back to the next older snapshot, then to the stream.
//     Prune drops such entries when they are older than the oldest
//     snapshot it keeps (a newer one may be a Put under way).
//   - The index is used only once it is complete: the key "built" says that
//     every snapshot stored before the index existed has been added. A
//     writer (OpenSnapshots) that finds no such key lists the bucket once,
//     merges what it finds into the index and writes the key; until then,
//     and for a reader without the index bucket, List lists the bucket as
//     before.
//
// Writers that do not keep the index (an engine from before it) must not
// share the bucket with ones that do: the snapshots they write are not
// found through the index (activation then replays more of the stream, and
// Prune leaves those objects in place).
type snapIndex struct {
	kv       jetstream.KeyValue
	complete atomic.Bool // the "built" key was there, or this process wrote it
}

const (
	// indexBuilt is the key that says the index is complete. It has no
	// '.', so it is no "<kind>.<graph>" key.
	indexBuilt = "built"
	// indexTries bounds the compare-and-set attempts of one index update.
	indexTries = 32
	// indexBuilders is how many index entries a build writes at once.
	indexBuilders = 16
)

// SnapshotIndexBucket returns the name of the Key-Value bucket that indexes
// the snapshots of Object Store bucket: "<bucket>-index".
func SnapshotIndexBucket(bucket string) string { return bucket + "-index" }

// indexKey returns the index key of kind's snapshots of graph. A graph id
// may hold characters a key may not ('/', say): it is base64url-encoded.
func indexKey(kind SnapshotKind, graph string) string {
	return string(kind) + "." + base64.RawURLEncoding.EncodeToString([]byte(graph))
}

// createIndex creates or binds the index bucket (file storage, cfg's
// replicas) and reads whether it is complete.
func createIndex(ctx context.Context, js jetstream.JetStream, cfg SnapshotConfig) (*snapIndex, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SnapshotIndexBucket(cfg.Bucket),
		Description: "Cairn snapshot index: the snapshot sequences of each graph",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open snapshot index %s: %w", SnapshotIndexBucket(cfg.Bucket), objectErr(err))
	}
	return bindIndex(ctx, kv)
}

// lookupIndex binds the index bucket if it exists; nil when it does not.
func lookupIndex(ctx context.Context, js jetstream.JetStream, cfg SnapshotConfig) (*snapIndex, error) {
	kv, err := js.KeyValue(ctx, SnapshotIndexBucket(cfg.Bucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up snapshot index %s: %w", SnapshotIndexBucket(cfg.Bucket), objectErr(err))
	}
	return bindIndex(ctx, kv)
}

func bindIndex(ctx context.Context, kv jetstream.KeyValue) (*snapIndex, error) {
	x := &snapIndex{kv: kv}
	_, err := kv.Get(ctx, indexBuilt)
	switch {
	case err == nil:
		x.complete.Store(true)
	case errors.Is(err, jetstream.ErrKeyNotFound):
	default:
		return nil, fmt.Errorf("read snapshot index: %w", objectErr(err))
	}
	return x, nil
}

// seqs returns the sequences the index holds for kind's snapshots of
// graph, newest first; none when it has no entry.
func (x *snapIndex) seqs(ctx context.Context, kind SnapshotKind, graph string) ([]uint64, error) {
	e, err := x.kv.Get(ctx, indexKey(kind, graph))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, objectErr(err)
	}
	return decodeIndexEntry(e.Value())
}

func decodeIndexEntry(b []byte) ([]uint64, error) {
	var seqs []uint64
	if err := json.Unmarshal(b, &seqs); err != nil {
		return nil, fmt.Errorf("%w: snapshot index entry: %w", ErrMalformed, err)
	}
	return seqs, nil
}

// update replaces the entry of kind's snapshots of graph by fn of it
// (compare and set, tried again when someone else wrote meanwhile). fn
// gets the sequences newest first and may change them in place; the
// result is stored sorted newest first, without repeats. An entry that
// does not decode is replaced as if it were empty: the index names too
// little then, which costs replay, never data.
func (x *snapIndex) update(ctx context.Context, kind SnapshotKind, graph string, fn func([]uint64) []uint64) error {
	key := indexKey(kind, graph)
	for range indexTries {
		var (
			seqs []uint64
			rev  uint64
		)
		e, err := x.kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
			seqs, _ = decodeIndexEntry(e.Value())
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return fmt.Errorf("snapshot index %s: %w", key, objectErr(err))
		}
		out := fn(seqs)
		slices.SortFunc(out, func(a, b uint64) int {
			switch {
			case a > b:
				return -1
			case a < b:
				return 1
			}
			return 0
		})
		out = slices.Compact(out)
		if out == nil {
			out = []uint64{}
		}
		if rev != 0 && slices.Equal(out, seqs) {
			return nil
		}
		val, _ := json.Marshal(out)
		if rev == 0 {
			_, err = x.kv.Create(ctx, key, val)
		} else {
			_, err = x.kv.Update(ctx, key, val, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // written meanwhile: read it again
		}
		if err != nil {
			return fmt.Errorf("snapshot index %s: %w", key, objectErr(err))
		}
		return nil
	}
	return fmt.Errorf("snapshot index %s: %w: %d concurrent updates in a row", key, ErrConflict, indexTries)
}

// add adds seq to the entry of kind's snapshots of graph.
func (x *snapIndex) add(ctx context.Context, kind SnapshotKind, graph string, seq uint64) error {
	return x.update(ctx, kind, graph, func(seqs []uint64) []uint64 { return append(seqs, seq) })
}

// remove drops the sequences drop reports from the entry of kind's
// snapshots of graph.
func (x *snapIndex) remove(ctx context.Context, kind SnapshotKind, graph string, drop func(uint64) bool) error {
	return x.update(ctx, kind, graph, func(seqs []uint64) []uint64 { return slices.DeleteFunc(seqs, drop) })
}

// buildIndex adds every snapshot object of the bucket to the index, then
// marks it complete. It runs once per bucket, when a writer opens a bucket
// whose index is not complete (new, or written by an engine from before the
// index). Entries are merged, not replaced: what writers added meanwhile
// stays. Each request is bounded by OpTimeout when ctx has no deadline,
// not the whole build: a big bucket takes one small write per graph.
func (s *Snapshots) buildIndex(ctx context.Context) error {
	start := time.Now()
	lctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	objs, err := s.listObjects(lctx, func(SnapshotKind, string) bool { return true })
	cancel()
	if err != nil {
		return fmt.Errorf("build snapshot index: list: %w", objectErr(err))
	}
	type series struct {
		kind  SnapshotKind
		graph string
	}
	found := map[series][]uint64{}
	for _, oi := range objs {
		if k, g, seq, ok := ParseSnapshotName(oi.Name); ok {
			found[series{k, g}] = append(found[series{k, g}], seq)
		}
	}
	todo := make(chan series)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(len(found), indexBuilders) {
		wg.Go(func() {
			for sr := range todo {
				uctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
				err := s.index.update(uctx, sr.kind, sr.graph, func(seqs []uint64) []uint64 { return append(seqs, found[sr]...) })
				cancel()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for sr := range found {
		todo <- sr
	}
	close(todo)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("build snapshot index: %w", firstErr)
	}
	stamp, _ := json.Marshal(map[string]any{"built": start.UTC(), "objects": len(objs), "series": len(found)})
	pctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	if _, err := s.index.kv.Put(pctx, indexBuilt, stamp); err != nil {
		return fmt.Errorf("build snapshot index: %w", objectErr(err))
	}
	s.index.complete.Store(true)
	return nil
}

// SnapshotStats counts how a Snapshots found snapshots since it was opened.
type SnapshotStats struct {
	// Listings counts the lists of the whole bucket's metadata (one
	// request whose answer names every object, then the metadata of the
	// matching ones): Lists of every graph, Lists and Prunes while the index
	// is not complete or could not be read, the index's one build.
	Listings uint64
	// IndexLookups counts Lists and Prunes of one graph answered from the
	// index.
	IndexLookups uint64
	// IndexStale counts index entries that named an object not found (a
	// snapshot deleted behind the index's back, or a Put that did not
	// finish): left out, so the reader falls back to the next older one.
	IndexStale uint64
	// IndexErrors counts index reads that failed and fell back to a listing.
	IndexErrors uint64
	// DirectGets counts Gets whose object was read by direct gets (no
	// consumer); the others were read through the Object Store.
	DirectGets uint64
}

// Since returns what was counted between before and s.
func (s SnapshotStats) Since(before SnapshotStats) SnapshotStats {
	return SnapshotStats{
		Listings: s.Listings - before.Listings, IndexLookups: s.IndexLookups - before.IndexLookups,
		IndexStale: s.IndexStale - before.IndexStale, IndexErrors: s.IndexErrors - before.IndexErrors,
		DirectGets: s.DirectGets - before.DirectGets,
	}
}

type snapCounters struct {
	listings, indexLookups, indexStale, indexErrors, directGets atomic.Uint64
}

// Stats returns the counters.
func (s *Snapshots) Stats() SnapshotStats {
	c := &s.counters
	return SnapshotStats{Listings: c.listings.Load(), IndexLookups: c.indexLookups.Load(), IndexStale: c.indexStale.Load(), IndexErrors: c.indexErrors.Load(), DirectGets: c.directGets.Load()}
}

// Indexed reports whether Lists of one graph are answered from the index
// (it exists and is complete).
func (s *Snapshots) Indexed() bool { return s.index != nil && s.index.complete.Load() }

// listIndexed returns the objects the index names for kind's snapshots of
// graph, the ones not found left out, and the sequences it named. ok is
// false when the index is not in use or could not be read: list the
// bucket then.
func (s *Snapshots) listIndexed(ctx context.Context, kind SnapshotKind, graph string) (objs []*jetstream.ObjectInfo, seqs []uint64, ok bool) {
	if !s.Indexed() {
		return nil, nil, false
	}
	seqs, err := s.index.seqs(ctx, kind, graph)
	if err != nil {
		s.counters.indexErrors.Add(1)
		return nil, nil, false
	}
	names := make([]string, len(seqs))
	subjects := make([]string, len(seqs))
	for i, seq := range seqs {
		names[i] = SnapshotName(kind, graph, seq)
		subjects[i] = metaSubject(s.cfg.Bucket, names[i])
	}
	objs, err = lastMetas(ctx, s.stream, subjects, names)
	if err != nil {
		s.counters.indexErrors.Add(1)
		return nil, nil, false
	}
	s.counters.indexLookups.Add(1)
	s.counters.indexStale.Add(uint64(len(seqs) - len(objs)))
	return objs, seqs, true
}

// metaSubject is the subject of an object's metadata in bucket.
func metaSubject(bucket, name string) string {
	return "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}
