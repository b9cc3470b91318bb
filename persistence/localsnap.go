package persistence

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
// A local copy is a cache, never the record: whoever takes one matches it
// against the snapshot the Object Store lists (kind, graph, seq, chain
// position, head CID, format and size: the same state of the same chain),
// and checks the head against the event store as for a fetched one. It is
// as trusted as the data directory it lives in, which also holds the NATS
// server's stream files. Both formats carry a CRC-32C of their own, which
// their decoders check: a torn or damaged copy fails it (or Load's size
// check) and is passed over, and the snapshot fetched from the Object
// Store.
//
// It is safe for concurrent use.
type LocalSnapshots struct {
	dir string
	// mu serialises the writes and removals of one graph's copies.
	mu     sync.Mutex
	saves  atomic.Uint64
	errors atomic.Uint64
}

const (
	// localMagic starts every local copy (format 1 of the file).
	localMagic = "CAIRNLS1"
	// localHeaderMax bounds a copy's header.
	localHeaderMax = 64 << 10
	// localSuffix ends a local copy's file name; a file being written ends
	// in localSuffix + ".tmp".
	localSuffix = ".snap"
)

// localHeader is a local copy's header (JSON).
type localHeader struct {
	Kind     SnapshotKind `json:"kind"`
	Graph    string       `json:"graph"`
	Seq      uint64       `json:"seq"`
	Position uint64       `json:"position"`
	Head     string       `json:"head,omitempty"`
	Format   uint32       `json:"format"`
	Size     int64        `json:"size"`
	KeyID    string       `json:"key_id,omitempty"`
}

// OpenLocalSnapshots returns the local copies kept in dir, creating it.
func OpenLocalSnapshots(dir string) (*LocalSnapshots, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local snapshots: %w", err)
	}
	return &LocalSnapshots{dir: dir}, nil
}

// Keeps reports whether Save keeps copies of kind's snapshots: aggregate
// states and read models, whose formats carry their own checksum.
func (l *LocalSnapshots) Keeps(kind SnapshotKind) bool {
	return kind == KindAggregate || kind == KindReadModel
}

// graphDir is where kind's copies of graph live: the graph id hex-encoded,
// so that any id is one path element.
func (l *LocalSnapshots) graphDir(kind SnapshotKind, graph string) string {
	return filepath.Join(l.dir, string(kind), hex.EncodeToString([]byte(graph)))
}

// Save writes data as the local copy of the snapshot info names, then
// removes that kind and graph's older copies. The file appears whole or not
// at all (written aside, then renamed). The writes go through gate (nil:
// unpaced) a MiB at a time, as background work; ctx ending stops them.
func (l *LocalSnapshots) Save(ctx context.Context, info SnapshotInfo, data []byte, gate *pace.Gate) error {
	if _, err := info.name(); err != nil {
		return fmt.Errorf("local snapshot: %w", err)
	}
	if !l.Keeps(info.Kind) {
		return fmt.Errorf("local snapshot %s: no copies of %s snapshots are kept", info.Name, info.Kind)
	}
	h := localHeader{Kind: info.Kind, Graph: info.Graph, Seq: info.Seq, Position: info.Position, Format: info.Format,
		Size: int64(len(data)), KeyID: info.KeyID}
	if info.Head.Defined() {
		h.Head = info.Head.String()
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("local snapshot: %w", err)
	}
	dir := l.graphDir(info.Kind, info.Graph)
	name := filepath.Join(dir, fmt.Sprintf("%0*d%s", seqDigits, info.Seq, localSuffix))
	l.mu.Lock()
	defer l.mu.Unlock()
	err = l.write(ctx, dir, name, hb, data, gate)
	if err != nil {
		l.errors.Add(1)
		return fmt.Errorf("local snapshot %s: %w", info.Name, err)
	}
	l.saves.Add(1)
	// The older copies of this kind and graph go: only the newest is kept.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if p := filepath.Join(dir, e.Name()); p != name {
			_ = os.Remove(p)
		}
	}
	return nil
}

// localChunk is how much of a copy is written between two steps of its
// pacing.
const localChunk = 1 << 20

func (l *LocalSnapshots) write(ctx context.Context, dir, name string, header, data []byte, gate *pace.Gate) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var pre [len(localMagic) + 4]byte
	copy(pre[:], localMagic)
	binary.BigEndian.PutUint32(pre[len(localMagic):], uint32(len(header)))
	for _, b := range [][]byte{pre[:], header} {
		if _, err = f.Write(b); err != nil {
			return err
		}
	}
	w, err := gate.Begin(ctx)
	if err != nil {
		return err
	}
	defer w.End()
	for off := 0; off < len(data); off += localChunk {
		if _, err = f.Write(data[off:min(off+localChunk, len(data))]); err != nil {
			return err
		}
		if err = w.Step(ctx); err != nil {
			return err
		}
	}
	// No fsync: a copy torn by a crash fails its CRC and is passed over,
	// and the Object Store holds the snapshot either way.
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// Remove deletes the local copy of the snapshot info names, if there is one.
func (l *LocalSnapshots) Remove(info SnapshotInfo) {
	if _, err := info.name(); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	dir := l.graphDir(info.Kind, info.Graph)
	_ = os.Remove(filepath.Join(dir, fmt.Sprintf("%0*d%s", seqDigits, info.Seq, localSuffix)))
	_ = os.Remove(dir) // only when it is empty
}

// LocalCopy is one local copy found by Scan.
type LocalCopy struct {
	Info SnapshotInfo // Kind, Graph, Seq, Position, Head, Format, Size, KeyID, Name
	Path string
	// ModTime orders copies by how recently they were written.
	ModTime int64
}

// Scan lists the local copies, newest written first. Files that are not
// copies (a name that does not parse, a torn write's .tmp) are skipped;
// headers are read, payloads are not.
func (l *LocalSnapshots) Scan() []LocalCopy {
	var out []LocalCopy
	_ = filepath.WalkDir(l.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != localSuffix {
			return nil
		}
		info, err := readLocalHeader(path)
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, LocalCopy{Info: info, Path: path, ModTime: fi.ModTime().UnixNano()})
		return nil
	})
	slices.SortFunc(out, func(a, b LocalCopy) int { return cmp.Compare(b.ModTime, a.ModTime) })
	return out
}

// readLocalHeader reads a copy's header.
func readLocalHeader(path string) (SnapshotInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return SnapshotInfo{}, err
	}
	defer f.Close()
	var pre [len(localMagic) + 4]byte
	if _, err := f.ReadAt(pre[:], 0); err != nil {
		return SnapshotInfo{}, err
	}
	h, _, err := parseLocal(pre[:], f)
	if err != nil {
		return SnapshotInfo{}, err
	}
	return h.info()
}

// parseLocal parses a copy's header from pre (the magic and length) and r.
func parseLocal(pre []byte, r interface {
	ReadAt([]byte, int64) (int, error)
}) (localHeader, int64, error) {
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
	b, err := os.ReadFile(c.Path)
	if err != nil {
		return nil, fmt.Errorf("local snapshot %s: %w", c.Info.Name, err)
	}
	if len(b) < len(localMagic)+4 {
		return nil, fmt.Errorf("local snapshot %s: %d bytes", c.Info.Name, len(b))
	}
	h, off, err := parseLocal(b[:len(localMagic)+4], bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("local snapshot %s: %w", c.Info.Name, err)
	}
	info, err := h.info()
	if err != nil || info.Name != c.Info.Name || !sameLocal(info, c.Info) {
		return nil, fmt.Errorf("local snapshot %s: the file changed since it was listed", c.Info.Name)
	}
	data := b[off:]
	if int64(len(data)) != h.Size {
		return nil, fmt.Errorf("local snapshot %s: %d payload bytes, the header says %d", c.Info.Name, len(data), h.Size)
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
	return LocalStats{Saves: l.saves.Load(), Errors: l.errors.Load()}
}
