package persistence

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/cairn-graph/cairn/internal/pace"
)

// LocalSnapshots keeps, in a directory of the engine's own disk, a copy of
// the newest aggregate and read-model snapshot of each graph that this
// process stored in the Object Store (SnapshotConfig.Local; the kinds a
// restart decodes ahead, see Keeps): the payload as it is, uncompressed,
// after a header naming the snapshot. A restarted engine reads them before its NATS server has
// recovered (JetStream rebuilds its stream state after a kill -9, half a
// second for a gigabyte of history), so that decoding its read models and
// aggregate states overlaps the recovery instead of following it (see
// actors.Warm).
//
// The copies are records appended to pack files (<generation>.pack), not a
// file each: creating a file costs the kernel far more than writing one
// (0.7 to 2 ms of system CPU per file on the 2-core reference machine,
// against 5 µs for a 4 KiB append), and a snapshot round of 1,000 graphs
// created 2,000 of them, which stalled the whole process. A process
// appends to a pack of its own (a new generation per open, and a new one
// once a pack holds 64 MiB); the newest record of a kind and graph
// is its copy, a removal appends a tombstone. A pack whose records are all
// superseded is deleted; one that is mostly superseded has its live
// records copied to the current pack first (so that the packs hold at
// most about twice the live copies, plus the current pack).
//
// A local copy is a cache, never the record: whoever takes one matches it
// against the snapshot the Object Store lists (kind, graph, seq, chain
// position, head CID, format and size: the same state of the same chain),
// and checks the head against the event store as for a fetched one. It is
// as trusted as the data directory it lives in, which also holds the NATS
// server's stream files. Both formats carry a CRC-32C of their own, which
// their decoders check: a damaged copy fails it (or Load's size check) and
// is passed over, and the snapshot fetched from the Object Store. A record
// torn by a crash ends its pack's scan (a pack is never appended to after
// its process ended).
//
// It is safe for concurrent use.
type LocalSnapshots struct {
	dir string
	// mu serialises the appends, removals, scans and cleaning.
	mu sync.Mutex
	// cur is the pack appended to (nil: none yet, the next Save creates
	// generation next).
	cur   *os.File
	next  uint64
	packs map[uint64]*localPack
	live  map[localKey]localRecord // the newest record of each kind and graph
	// packMax is the size past which the next record goes to a new pack
	// (defaultPackMax; tests make it small).
	packMax int64
	saves   atomic.Uint64
	errs    atomic.Uint64
}

type localKey struct {
	kind  SnapshotKind
	graph string
}

// localRecord is where one record lies.
type localRecord struct {
	gen      uint64
	off, len int64 // the record's bytes: magic, header length, header, payload
	info     SnapshotInfo
	removed  bool // a tombstone
}

// localPack is one pack file: its size and the bytes of its records that
// are the newest of their kind and graph.
type localPack struct {
	path       string
	size, live int64
}

const (
	// localMagic starts every record (format 1).
	localMagic = "CAIRNLS1"
	// localHeaderMax bounds a record's header.
	localHeaderMax = 64 << 10
	// localSuffix ends a pack's file name: <generation, 20 digits>.pack.
	localSuffix = ".pack"
	// defaultPackMax is the size past which the next record goes to a new
	// pack.
	defaultPackMax = 64 << 20
)

// localHeader is a record's header (JSON).
type localHeader struct {
	Kind     SnapshotKind `json:"kind"`
	Graph    string       `json:"graph"`
	Seq      uint64       `json:"seq"`
	Position uint64       `json:"position"`
	Head     string       `json:"head,omitempty"`
	Format   uint32       `json:"format"`
	Size     int64        `json:"size"`
	KeyID    string       `json:"key_id,omitempty"`
	// Removed marks a tombstone: the kind and graph's copy of Seq is
	// gone. A tombstone has no payload.
	Removed bool `json:"removed,omitempty"`
}

// OpenLocalSnapshots returns the local copies kept in dir, creating it, and
// reads the headers of the packs there.
func OpenLocalSnapshots(dir string) (*LocalSnapshots, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local snapshots: %w", err)
	}
	l := &LocalSnapshots{dir: dir, packMax: defaultPackMax}
	l.packs, l.live, l.next = l.scan()
	return l, nil
}

// Keeps reports whether Save keeps copies of kind's snapshots: aggregate
// states and read models, whose formats carry their own checksum.
func (l *LocalSnapshots) Keeps(kind SnapshotKind) bool {
	return kind == KindAggregate || kind == KindReadModel
}

// Save appends data as the local copy of the snapshot info names, which
// supersedes that kind and graph's older copy. The copy is listed once it
// is written whole; a failed write is cut off the pack. The payload is
// written through gate (nil: unpaced) a MiB at a time, as background work;
// ctx ending stops it.
func (l *LocalSnapshots) Save(ctx context.Context, info SnapshotInfo, data []byte, gate *pace.Gate) error {
	if _, err := info.name(); err != nil {
		return fmt.Errorf("local snapshot: %w", err)
	}
	if !l.Keeps(info.Kind) {
		return fmt.Errorf("local snapshot %s: no copies of %s snapshots are kept", info.Name, info.Kind)
	}
	h := headerOf(info, len(data), false)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.append(ctx, h, bytes.NewReader(data), gate); err != nil {
		l.errs.Add(1)
		return fmt.Errorf("local snapshot %s: %w", info.Name, err)
	}
	l.saves.Add(1)
	l.clean(ctx, gate)
	return nil
}

// Remove drops the local copy of the snapshot info names, if it is the
// kind and graph's copy: a tombstone is appended (best effort).
func (l *LocalSnapshots) Remove(info SnapshotInfo) {
	if _, err := info.name(); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.live[localKey{info.Kind, info.Graph}]
	if !ok || r.removed || r.info.Seq != info.Seq {
		return
	}
	h := localHeader{Kind: info.Kind, Graph: info.Graph, Seq: info.Seq, Removed: true}
	if err := l.append(context.Background(), h, bytes.NewReader(nil), nil); err != nil {
		l.errs.Add(1)
		return
	}
	l.clean(context.Background(), nil)
}

// localChunk is how much of a payload is written between two steps of its
// pacing.
const localChunk = 1 << 20

// append writes one record, of the payload h.Size bytes of src hold, at
// the end of the current pack (opening a new one when there is none or it
// is full) and makes it its kind and graph's newest. On failure it cuts
// the pack back to where the record began.
func (l *LocalSnapshots) append(ctx context.Context, h localHeader, src io.ReaderAt, gate *pace.Gate) (err error) {
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if l.cur != nil {
		p := l.packs[l.next-1]
		if _, err := os.Stat(p.path); errors.Is(err, fs.ErrNotExist) {
			// Somebody deleted the copies (a cache): start afresh.
			l.closeCurrent()
			l.forget(l.next - 1)
		} else if p.size >= l.packMax {
			l.closeCurrent()
		}
	}
	if l.cur == nil {
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return err
		}
		path := filepath.Join(l.dir, fmt.Sprintf("%0*d%s", seqDigits, l.next, localSuffix))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		l.cur = f
		l.packs[l.next] = &localPack{path: path}
		l.next++
	}
	gen := l.next - 1
	p := l.packs[gen]
	off := p.size
	defer func() {
		if err != nil {
			// A pack that cannot be cut back is not appended to again: the
			// torn record ends its scan.
			if l.cur.Truncate(off) != nil {
				l.closeCurrent()
			}
		}
	}()
	size := int(h.Size)
	pre := len(localMagic) + 4 + len(hb)
	rec := make([]byte, pre+min(size, localChunk))
	copy(rec, localMagic)
	binary.BigEndian.PutUint32(rec[len(localMagic):], uint32(len(hb)))
	copy(rec[len(localMagic)+4:], hb)
	pos := off
	if size <= localChunk {
		// Small copies (most of them) in one write, unpaced.
		if err = readFull(src, rec[pre:], 0); err != nil {
			return err
		}
		if _, err = l.cur.WriteAt(rec, pos); err != nil {
			return err
		}
		pos += int64(len(rec))
	} else {
		if _, err = l.cur.WriteAt(rec[:pre], pos); err != nil {
			return err
		}
		pos += int64(pre)
		w, err := gate.Begin(ctx)
		if err != nil {
			return err
		}
		defer w.End()
		buf := rec[pre:]
		for o := 0; o < size; o += localChunk {
			chunk := buf[:min(localChunk, size-o)]
			if err = readFull(src, chunk, int64(o)); err != nil {
				return err
			}
			if _, err = l.cur.WriteAt(chunk, pos); err != nil {
				return err
			}
			pos += int64(len(chunk))
			if err = w.Step(ctx); err != nil {
				return err
			}
		}
	}
	// No fsync: a record torn by a crash ends its pack's scan, and the
	// Object Store holds the snapshot either way.
	p.size = pos
	info, err := h.info()
	if err != nil {
		return err
	}
	l.supersede(localRecord{gen: gen, off: off, len: pos - off, info: info, removed: h.Removed})
	return nil
}

// supersede makes r its kind and graph's newest record.
func (l *LocalSnapshots) supersede(r localRecord) {
	k := localKey{r.info.Kind, r.info.Graph}
	if old, ok := l.live[k]; ok {
		if p := l.packs[old.gen]; p != nil {
			p.live -= old.len
		}
	}
	l.live[k] = r
	l.packs[r.gen].live += r.len
}

// forget drops pack gen, whose file is gone, and the records it held.
func (l *LocalSnapshots) forget(gen uint64) {
	for k, r := range l.live {
		if r.gen == gen {
			delete(l.live, k)
		}
	}
	delete(l.packs, gen)
}

func (l *LocalSnapshots) closeCurrent() {
	if l.cur != nil {
		_ = l.cur.Close()
		l.cur = nil
	}
}

// clean deletes the packs other than the current one whose records are
// all superseded, and those of which less than half is live once their
// live records are copied to the current pack. A tombstone is copied only
// while an older pack may still hold the copy it removes.
func (l *LocalSnapshots) clean(ctx context.Context, gate *pace.Gate) {
	cur := l.next - 1
	if l.cur == nil {
		cur = l.next // every pack is closed
	}
	var gens []uint64
	for gen, p := range l.packs {
		if gen != cur && (p.live == 0 || 2*p.live < p.size) {
			gens = append(gens, gen)
		}
	}
	slices.Sort(gens)
	for _, gen := range gens {
		p := l.packs[gen]
		if p == nil {
			continue
		}
		if p.live > 0 && !l.evacuate(ctx, gen, gate) {
			continue
		}
		if err := os.Remove(p.path); err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(l.packs, gen)
		}
	}
}

// evacuate copies pack gen's live records to the current pack, oldest
// first; it reports whether none is left in gen.
func (l *LocalSnapshots) evacuate(ctx context.Context, gen uint64, gate *pace.Gate) bool {
	var recs []localRecord
	oldest := gen
	for g := range l.packs {
		oldest = min(oldest, g)
	}
	for _, r := range l.live {
		if r.gen == gen {
			recs = append(recs, r)
		}
	}
	slices.SortFunc(recs, func(a, b localRecord) int { return cmp.Compare(a.off, b.off) })
	for _, r := range recs {
		if r.removed && oldest == gen {
			// No older pack holds what it removed.
			delete(l.live, localKey{r.info.Kind, r.info.Graph})
			l.packs[gen].live -= r.len
			continue
		}
		if !l.copyRecord(ctx, gen, r, gate) {
			return false
		}
	}
	return true
}

// headerOf is the header of a record of info with size payload bytes.
func headerOf(info SnapshotInfo, size int, removed bool) localHeader {
	h := localHeader{Kind: info.Kind, Graph: info.Graph, Seq: info.Seq, Position: info.Position, Format: info.Format,
		Size: int64(size), KeyID: info.KeyID, Removed: removed}
	if info.Head.Defined() {
		h.Head = info.Head.String()
	}
	return h
}

// copyRecord appends record r of pack gen again, reading its payload from
// the pack a chunk at a time; it reports whether it did.
func (l *LocalSnapshots) copyRecord(ctx context.Context, gen uint64, r localRecord, gate *pace.Gate) bool {
	p := l.packs[gen]
	f, err := os.Open(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		l.forget(gen)
		return false
	}
	if err != nil {
		return false
	}
	defer f.Close()
	h, n, err := readHeader(f, r.off)
	if err != nil || h.Graph != r.info.Graph || h.Kind != r.info.Kind || h.Seq != r.info.Seq || n+max(h.Size, 0) != r.len {
		return false // the pack changed under us
	}
	if err := l.append(ctx, h, io.NewSectionReader(f, r.off+n, h.Size), gate); err != nil {
		l.errs.Add(1)
		return false
	}
	return true
}

// readFull fills b from src at off.
func readFull(src io.ReaderAt, b []byte, off int64) error {
	n, err := src.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("%d of %d payload bytes", n, len(b))
	}
	return err
}

// LocalCopy is one local copy found by Scan.
type LocalCopy struct {
	Info SnapshotInfo // Kind, Graph, Seq, Position, Head, Format, Size, KeyID, Name
	// Path is the pack holding the copy, and Offset and Length the
	// record's bytes there (magic, header and payload).
	Path           string
	Offset, Length int64
}

// Scan lists the local copies as the packs on disk hold them, the newest
// written first: the last record of each kind and graph, unless it is a
// tombstone. Files that are not packs are skipped; headers are read,
// payloads are not.
func (l *LocalSnapshots) Scan() []LocalCopy {
	l.mu.Lock()
	packs, live, _ := l.scan()
	l.mu.Unlock()
	var out []LocalCopy
	for _, r := range live {
		if !r.removed {
			out = append(out, LocalCopy{Info: r.info, Path: packs[r.gen].path, Offset: r.off, Length: r.len})
		}
	}
	gen := func(c LocalCopy) string { return filepath.Base(c.Path) }
	slices.SortFunc(out, func(a, b LocalCopy) int {
		return cmp.Or(cmp.Compare(gen(b), gen(a)), cmp.Compare(b.Offset, a.Offset))
	})
	return out
}

// scan reads the packs' headers, oldest generation first: the packs, the
// newest record of each kind and graph, and the generation after the
// newest. A record that does not parse ends its pack's scan.
func (l *LocalSnapshots) scan() (map[uint64]*localPack, map[localKey]localRecord, uint64) {
	ents, _ := os.ReadDir(l.dir)
	packs, live := map[uint64]*localPack{}, map[localKey]localRecord{}
	var gens []uint64
	for _, e := range ents {
		digits, ok := strings.CutSuffix(e.Name(), localSuffix)
		if !ok || len(digits) != seqDigits || !e.Type().IsRegular() {
			continue
		}
		gen, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			continue
		}
		gens = append(gens, gen)
	}
	slices.Sort(gens)
	next := uint64(1)
	tmp := &LocalSnapshots{packs: packs, live: live}
	for _, gen := range gens {
		next = gen + 1
		p := &localPack{path: filepath.Join(l.dir, fmt.Sprintf("%0*d%s", seqDigits, gen, localSuffix))}
		packs[gen] = p
		f, err := os.Open(p.path)
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		for off := int64(0); err == nil && off < fi.Size(); {
			var h localHeader
			var n int64
			if h, n, err = readHeader(f, off); err != nil || off+n+max(h.Size, 0) > fi.Size() {
				break
			}
			info, ierr := h.info()
			if ierr != nil {
				break
			}
			end := off + n + max(h.Size, 0)
			p.size = end
			tmp.supersede(localRecord{gen: gen, off: off, len: end - off, info: info, removed: h.Removed})
			off = end
		}
		f.Close()
		if p.size == 0 {
			p.size = fi.Size()
		}
	}
	return packs, live, next
}

// readHeader reads the header of the record at off and returns it with the
// bytes before the payload.
func readHeader(r io.ReaderAt, off int64) (localHeader, int64, error) {
	var pre [len(localMagic) + 4]byte
	if _, err := r.ReadAt(pre[:], off); err != nil {
		return localHeader{}, 0, err
	}
	return parseLocal(pre[:], io.NewSectionReader(r, off, 1<<62))
}

// readRecord reads the record at off: its header and, with payload, its
// payload, which must be whole.
func readRecord(r io.ReaderAt, off int64, payload bool) (localHeader, []byte, error) {
	h, n, err := readHeader(r, off)
	if err != nil || !payload {
		return h, nil, err
	}
	if h.Size < 0 || h.Size > 1<<40 {
		return h, nil, fmt.Errorf("header gives %d payload bytes", h.Size)
	}
	data := make([]byte, h.Size)
	got, err := r.ReadAt(data, off+n)
	if int64(got) != h.Size {
		return h, nil, fmt.Errorf("%d payload bytes, the header says %d", got, h.Size)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return h, nil, err
	}
	return h, data, nil
}

// parseLocal parses a copy's header from pre (the magic and length) and r.
func parseLocal(pre []byte, r io.ReaderAt) (localHeader, int64, error) {
	var h localHeader
	if !bytes.Equal(pre[:len(localMagic)], []byte(localMagic)) {
		return h, 0, errors.New("not a local snapshot copy")
	}
	n := binary.BigEndian.Uint32(pre[len(localMagic):])
	if n == 0 || n > localHeaderMax {
		return h, 0, fmt.Errorf("header of %d bytes", n)
	}
	hb := make([]byte, n)
	if _, err := r.ReadAt(hb, int64(len(pre))); err != nil {
		return h, 0, err
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, 0, fmt.Errorf("header: %w", err)
	}
	return h, int64(len(pre)) + int64(n), nil
}

func (h localHeader) info() (SnapshotInfo, error) {
	info := SnapshotInfo{Kind: h.Kind, Graph: h.Graph, Seq: h.Seq, Position: h.Position, Format: h.Format, Size: h.Size, KeyID: h.KeyID}
	if h.Head != "" {
		c, err := cid.Decode(h.Head)
		if err != nil {
			return SnapshotInfo{}, fmt.Errorf("header head %q: %w", h.Head, err)
		}
		info.Head = c
	}
	name, err := info.name()
	if err != nil {
		return SnapshotInfo{}, err
	}
	info.Name = name
	return info, nil
}

// Load reads a copy found by Scan and returns its payload, refusing one
// whose header changed since or whose payload is not its size. The
// payload's own checksum is for its decoder to check.
func (l *LocalSnapshots) Load(c LocalCopy) ([]byte, error) {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, fmt.Errorf("local snapshot %s: %w", c.Info.Name, err)
	}
	defer f.Close()
	h, data, err := readRecord(f, c.Offset, true)
	if err != nil {
		return nil, fmt.Errorf("local snapshot %s: %w", c.Info.Name, err)
	}
	info, err := h.info()
	if err != nil || h.Removed || info.Name != c.Info.Name || !sameLocal(info, c.Info) {
		return nil, fmt.Errorf("local snapshot %s: the file changed since it was listed", c.Info.Name)
	}
	return data, nil
}

// sameLocal reports whether a and b name the same snapshot of the same
// state: kind, graph, seq, chain position, head, format and size.
func sameLocal(a, b SnapshotInfo) bool {
	return a.Kind == b.Kind && a.Graph == b.Graph && a.Seq == b.Seq && a.Position == b.Position &&
		a.Head.Equals(b.Head) && a.Format == b.Format && a.Size == b.Size
}

// Matches reports whether the local copy c is of the snapshot stored, as
// the Object Store or a manifest names it: the same kind, graph, seq,
// chain position, head and format, and size where stored gives one.
func (c LocalCopy) Matches(stored SnapshotInfo) bool {
	if stored.Size == 0 {
		stored.Size = c.Info.Size
	}
	return sameLocal(c.Info, stored)
}

// LocalStats counts the copies written and the writes that failed.
type LocalStats struct {
	Saves, Errors uint64
}

// Stats returns the counters.
func (l *LocalSnapshots) Stats() LocalStats {
	return LocalStats{Saves: l.saves.Load(), Errors: l.errs.Load()}
}
