package persistence

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-graph/cairn/internal/offheap"
	"github.com/cairn-graph/cairn/internal/pace"
	"github.com/cairn-graph/cairn/internal/wire"
	"github.com/ipfs/go-cid"
	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultObjectBucket is the JetStream Object Store bucket that holds
// snapshots and archives.
const DefaultObjectBucket = "object-store"

// SnapshotKind says whose state a snapshot holds.
type SnapshotKind string

// Snapshot kinds.
const (
	// KindAggregate: a graph grain's aggregate state (cairn.v1.GraphSnapshot).
	KindAggregate SnapshotKind = "aggregate"
	// KindReadModel: one graph's read model (readmodel's binary format).
	KindReadModel SnapshotKind = "readmodel"
	// KindManifest: a projection manifest, the set of read-model snapshots
	// taken at one stream position (Graph names the manifest series, for
	// example "projections").
	KindManifest SnapshotKind = "manifest"
	// KindLayout: a viewer's position keyframe of one graph (the scene's
	// slot table and positions, viewer/scene's keyframe format), outside
	// the event chain.
	KindLayout SnapshotKind = "layout"
)

// SnapshotInfo describes one stored snapshot. Put fills Name, Size, Stored
// and Created.
type SnapshotInfo struct {
	Kind     SnapshotKind
	Graph    string
	Seq      uint64  // stream sequence of the last transaction folded in
	Position uint64  // chain position (n) of the last event folded in
	Head     cid.Cid // CID of that event; cid.Undef when Position is 0
	Format   uint32  // format version of the payload, chosen by the writer
	Name     string  // object name: "<kind>/<graph>/<seq, 20 digits>"
	Size     int64   // payload bytes before compression
	Stored   int64   // bytes stored (compressed)
	Created  time.Time
	KeyID    string // the key that signed it, "" when unsigned
}

// SnapshotConfig tunes the snapshot store.
type SnapshotConfig struct {
	// Bucket is the Object Store bucket. Default "object-store".
	Bucket string
	// Replicas of the bucket (1, 3 or 5). Default 1.
	Replicas int
	// OpTimeout bounds each Put, Get, List, Delete and Prune, also under
	// a longer deadline of the caller's (a chunk published to, or a
	// consumer served by, a NATS stream leader that dies is never
	// answered: the call fails and is made again after the election), and
	// opening the bucket when ctx has no deadline. Default 30s.
	OpTimeout time.Duration
	// Levels sets the zstd level Put compresses a kind with; a kind not in
	// it (or a nil map) gets its default, DefaultSnapshotLevel. Get reads
	// any level.
	Levels map[SnapshotKind]zstd.EncoderLevel
	// Signer, when set, signs every snapshot Put stores (see
	// ObjectSigningBytes). Default nil: unsigned.
	Signer *Signer
	// Trust, when set, makes Get refuse a snapshot that is unsigned,
	// signed by a key it does not hold, or whose signature does not hold
	// (ErrSignature). Default nil: no signature checks. Get checks the
	// payload's SHA-256 against the metadata either way.
	Trust *Keyring
	// Local, when set, gets a copy of every aggregate and read-model
	// snapshot Put stores, and loses it when the snapshot is deleted: the
	// newest of each kind and graph, on the engine's own disk, for a
	// restart to read before NATS is back (see LocalSnapshots). Default
	// nil: none.
	Local *LocalSnapshots
	// Background paces the CPU work of snapshots: Put's compression here,
	// and the encoding of read-model and aggregate snapshots by the actors
	// (Snapshots.Pace), so that a snapshot of a big graph does not take
	// the CPUs from commands and queries. Zero fields get
	// pace.DefaultConfig's: one worker per two CPUs, each busy at most
	// half the time.
	Background pace.Config
}

// DefaultSnapshotConfig returns the defaults.
func DefaultSnapshotConfig() SnapshotConfig {
	return SnapshotConfig{Bucket: DefaultObjectBucket, Replicas: 1, OpTimeout: 30 * time.Second}
}

// LevelRaw is the level of a kind stored without compression: each frame
// is zstd raw blocks, which any zstd decoder reads (Get reads every level
// alike). Put sends the payload's own bytes between the frame and block
// headers: no compression, no copy.
const LevelRaw zstd.EncoderLevel = 0

// DefaultSnapshotLevel returns the zstd level kind is compressed with when
// SnapshotConfig.Levels does not say: LevelRaw for KindReadModel and
// KindAggregate, zstd.SpeedDefault for the others. Read models and
// aggregate states (format 2) are packed arrays that zstd barely
// compresses: 96 MB of a real read model compress 1.16× in 782 ms and
// decompress in 215 ms at the default level, 1.28× in 343 ms and 73 ms at
// the fastest with every block's literals entropy-coded (1.13×, 193 ms and
// 42 ms without); a 1M-node aggregate state compresses 1.23× at the
// default level in 629 ms of a Put. That compression was 12 % of the CPU
// of a whole `cairn bench mixed` at 1M nodes and 3M edges (load and
// measured phase), in bursts that held up queries, for a fifth of the
// bytes: they are stored raw.
func DefaultSnapshotLevel(kind SnapshotKind) zstd.EncoderLevel {
	if kind == KindReadModel || kind == KindAggregate {
		return LevelRaw
	}
	return zstd.SpeedDefault
}

// level returns the level Put compresses kind with.
func (c SnapshotConfig) level(kind SnapshotKind) zstd.EncoderLevel {
	if l, ok := c.Levels[kind]; ok {
		return l
	}
	return DefaultSnapshotLevel(kind)
}

// bucketName is what the Object Store accepts as a bucket name.
var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Validate returns every problem with c, joined.
func (c SnapshotConfig) Validate() error {
	var errs []error
	if !bucketName.MatchString(c.Bucket) {
		errs = append(errs, fmt.Errorf("bucket name %q is not letters, digits, '-' and '_'", c.Bucket))
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1, 3 or 5, not %d", c.Replicas))
	}
	if c.OpTimeout <= 0 {
		errs = append(errs, errors.New("op timeout must be positive"))
	}
	if err := c.Background.Defaulted().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("background: %w", err))
	}
	for _, kind := range slices.Sorted(maps.Keys(c.Levels)) {
		if err := checkKind(kind); err != nil {
			errs = append(errs, fmt.Errorf("levels: %w", err))
		}
		if l := c.Levels[kind]; l != LevelRaw && (l < zstd.SpeedFastest || l > zstd.SpeedBestCompression) {
			errs = append(errs, fmt.Errorf("levels: %s: %d is not a zstd encoder level", kind, l))
		}
	}
	return errors.Join(errs...)
}

// Snapshots stores zstd-compressed snapshots in the JetStream Object Store.
// It is safe for concurrent use.
//
// A snapshot is one object named "<kind>/<graph>/<seq, 20 digits>", whose
// Object Store metadata carries the SnapshotInfo fields (see snapMeta*). Its
// payload is split into frames of snapshotFrame bytes, each compressed on
// its own as one zstd frame (at the kind's level, SnapshotConfig.Levels;
// content size in the header), the frames concatenated: any zstd decoder
// reads it back whatever the level, and Put and Get compress and decompress
// the frames on all cores. The Object Store keeps a SHA-256 digest of the
// compressed bytes, which Get checks; the metadata keeps the SHA-256 of the
// uncompressed payload and, with SnapshotConfig.Signer, a signature over it
// and the snapshot's kind, graph, seq and head (ObjectSigningBytes), which
// Get checks too: a payload replaced with its metadata kept is refused.
type Snapshots struct {
	obj    jetstream.ObjectStore
	nc     *nats.Conn // obj's connection, for direct gets
	cfg    SnapshotConfig
	stream jetstream.Stream // the bucket's stream, to drop delete markers
	chunk  uint32           // Object Store chunk size
	// encs holds an encoder per level in use. EncodeAll only: safe for
	// concurrent use.
	encs map[zstd.EncoderLevel]*zstd.Encoder
	pace *pace.Gate
	bufs *offheap.Pool // see Buffers
	dec  *zstd.Decoder // DecodeAll only: safe for concurrent use
	// index finds one graph's snapshots without listing the bucket; nil
	// for a reader that found no index bucket (see snapIndex).
	index    *snapIndex
	counters snapCounters
}

const (
	// snapshotFrame is the raw bytes compressed as one zstd frame: frames
	// are compressed and decompressed in parallel. 4 MiB loses nothing
	// measurable against one frame (zstd's default window is 8 MiB, but
	// snapshot data repeats locally) and splits 100 MB into 25 jobs.
	snapshotFrame = 4 << 20
	// snapshotChunk is the Object Store chunk size: one message per MiB
	// instead of the default 128 KiB, 48 messages instead of 380 for a
	// 100 MB snapshot stored in 47 MiB.
	snapshotChunk = 1 << 20
	// snapshotCodec is the only payload encoding there is.
	snapshotCodec = "zstd"
	// zstdMaxBlock is the largest block a zstd frame may hold.
	zstdMaxBlock = 128 << 10
	// seqDigits is the width of the sequence in an object name.
	seqDigits = 20
)

// Object metadata keys of a snapshot.
const (
	snapMetaKind     = "kind"
	snapMetaGraph    = "graph"
	snapMetaSeq      = "seq"
	snapMetaPosition = "position"
	snapMetaHead     = "head" // CID string; absent when undefined
	snapMetaFormat   = "format"
	snapMetaSize     = "size" // raw payload bytes
	snapMetaCodec    = "codec"
)

// OpenObjects creates or updates the Object Store bucket cfg.Bucket (file
// storage, cfg.Replicas) and returns it. Snapshots and archives share it.
//
// Errors: an invalid cfg; ErrUnavailable when JetStream cannot be reached.
func OpenObjects(ctx context.Context, js jetstream.JetStream, cfg SnapshotConfig) (jetstream.ObjectStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot config: %w", err)
	}
	ctx, cancel := withTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      cfg.Bucket,
		Description: "Cairn snapshots and archives",
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", cfg.Bucket, objectErr(err))
	}
	return obj, nil
}

// OpenSnapshots creates or binds the bucket and its index (the Key-Value
// bucket SnapshotIndexBucket(cfg.Bucket)). When the index is not complete
// (a new one, or a bucket written before there was an index) it lists the
// bucket once and adds every snapshot it finds (see snapIndex).
//
// Errors: an invalid cfg; ErrUnavailable when JetStream cannot be reached.
func OpenSnapshots(ctx context.Context, js jetstream.JetStream, cfg SnapshotConfig) (*Snapshots, error) {
	obj, err := OpenObjects(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	s, err := newSnapshots(ctx, js, obj, cfg)
	if err != nil {
		return nil, err
	}
	ictx, cancel := withTimeout(ctx, cfg.OpTimeout)
	s.index, err = createIndex(ictx, js, cfg)
	cancel()
	if err != nil {
		return nil, err
	}
	if !s.index.complete.Load() {
		if err := s.buildIndex(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// LookupSnapshots binds an existing bucket without creating or changing it
// (a reader needs no permission to manage streams, and must not reset a
// bucket's replicas). It uses the bucket's index when there is a complete
// one, and keeps it up to date when it writes or deletes; without one it
// lists the bucket, as before the index.
//
// Errors: an invalid cfg; ErrNotFound when the bucket does not exist;
// ErrUnavailable when JetStream cannot be reached.
func LookupSnapshots(ctx context.Context, js jetstream.JetStream, cfg SnapshotConfig) (*Snapshots, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot config: %w", err)
	}
	lctx, cancel := withTimeout(ctx, cfg.OpTimeout)
	obj, err := js.ObjectStore(lctx, cfg.Bucket)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("look up object store %s: %w", cfg.Bucket, objectErr(err))
	}
	s, err := newSnapshots(ctx, js, obj, cfg)
	if err != nil {
		return nil, err
	}
	lctx, cancel = withTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	if s.index, err = lookupIndex(lctx, js, cfg); err != nil {
		return nil, err
	}
	return s, nil
}

func newSnapshots(ctx context.Context, js jetstream.JetStream, obj jetstream.ObjectStore, cfg SnapshotConfig) (*Snapshots, error) {
	ctx, cancel := withTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	st, err := js.Stream(ctx, "OBJ_"+cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", cfg.Bucket, translate(err))
	}
	n := runtime.GOMAXPROCS(0)
	// An encoder builds its state on first use: one per level costs nothing
	// until a kind uses it.
	encs := make(map[zstd.EncoderLevel]*zstd.Encoder)
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
		// Entropy-code literals even in a block with few matches: the
		// fastest level otherwise stores such a block raw, so a run of
		// packed ids or varints (few 4-byte repeats, but skewed bytes)
		// was stored uncompressed, 100 KB as 100,019 bytes where the
		// default level made 41 KB. With it, a real 96 MB read model is
		// stored 11 % smaller for 150 ms more encoding and 31 ms more
		// decoding (one core each); levels above the default do it anyway.
		//
		// A frame holds at most snapshotFrame raw bytes, so a longer window
		// finds nothing more: the default (8 MiB at the default level) only
		// made each encoder keep twice the history, 74 MB of an engine's
		// live heap with 1,000 small graphs (BenchmarkLatencyAt10kPerSecond,
		// inuse_space).
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(n), zstd.WithEncoderLevel(l), zstd.WithAllLitEntropyCompression(true),
			zstd.WithWindowSize(snapshotFrame), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, fmt.Errorf("zstd encoder: %w", err)
		}
		encs[l] = enc
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(n), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	chunk := uint32(snapshotChunk)
	// A chunk is one message: leave room for the protocol under a server
	// with a small max_payload.
	if mp := js.Conn().MaxPayload(); mp > 0 && int64(chunk)+4096 > mp {
		chunk = uint32(max(mp-4096, 64<<10))
	}
	gate, err := pace.New(cfg.Background.Defaulted())
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	return &Snapshots{obj: obj, nc: js.Conn(), cfg: cfg, stream: st, chunk: chunk, encs: encs, dec: dec, pace: gate,
		bufs: offheap.New(snapshotBuffersKept)}, nil
}

// snapshotBuffersKept is how many encode buffers Buffers keeps mapped
// between rounds: a big graph's read model and aggregate.
const snapshotBuffersKept = 2

// Buffers returns the pool that lends the buffers big snapshots are encoded
// into (outside the Go heap, mapped once and lent again: see
// internal/offheap). A buffer lent for a snapshot goes back once Put
// returned: Put keeps no reference to its data.
func (s *Snapshots) Buffers() *offheap.Pool {
	if s == nil {
		return nil
	}
	return s.bufs
}

// Pace returns the Gate that paces snapshot work (SnapshotConfig.Background):
// Put's compression goes through it, and callers encode their snapshots
// through it too, outside Put.
func (s *Snapshots) Pace() *pace.Gate {
	if s == nil {
		return nil
	}
	return s.pace
}

// Objects returns the Object Store the snapshots live in (archives share it).
func (s *Snapshots) Objects() jetstream.ObjectStore { return s.obj }

// SnapshotName returns the object name of kind's snapshot of graph at seq:
// "<kind>/<graph>/<seq, 20 digits>".
func SnapshotName(kind SnapshotKind, graph string, seq uint64) string {
	return fmt.Sprintf("%s/%s/%0*d", kind, graph, seqDigits, seq)
}

// ParseSnapshotName splits a snapshot object name into kind, graph and seq;
// ok is false when name is not one (an archive, say). A graph id may hold
// '/': the kind ends at the first, the sequence starts after the last.
func ParseSnapshotName(name string) (kind SnapshotKind, graph string, seq uint64, ok bool) {
	k, rest, found := strings.Cut(name, "/")
	if !found || !validKind(SnapshotKind(k)) || len(rest) < seqDigits+2 || rest[len(rest)-seqDigits-1] != '/' {
		return "", "", 0, false
	}
	graph, digits := rest[:len(rest)-seqDigits-1], rest[len(rest)-seqDigits:]
	for i := range len(digits) {
		if digits[i] < '0' || digits[i] > '9' {
			return "", "", 0, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || checkGraph(graph) != nil {
		return "", "", 0, false
	}
	return SnapshotKind(k), graph, seq, true
}

// kindName is what a snapshot kind may be: one lowercase word.
var kindName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// checkKind refuses kinds that would not make a snapshot name: a kind is one
// lowercase word, and "archive" names the archives that share the bucket.
func checkKind(kind SnapshotKind) error {
	if !validKind(kind) {
		return fmt.Errorf("%w: %q is not a snapshot kind", ErrInvalidSnapshotKind, kind)
	}
	return nil
}

func validKind(kind SnapshotKind) bool {
	return kindName.MatchString(string(kind)) && kind != "archive"
}

// ErrInvalidSnapshotKind: a snapshot kind is not one lowercase word, or is
// "archive".
var ErrInvalidSnapshotKind = errors.New("invalid snapshot kind")

// name returns info's object name after checking its kind and graph.
func (info SnapshotInfo) name() (string, error) {
	if err := checkKind(info.Kind); err != nil {
		return "", err
	}
	if err := checkGraph(info.Graph); err != nil {
		return "", err
	}
	return SnapshotName(info.Kind, info.Graph, info.Seq), nil
}

// Put compresses data and stores it under info's kind, graph and seq,
// replacing a snapshot with the same name. It returns info as stored. With
// an index, it adds the snapshot to the index first (see snapIndex), and
// stores nothing when that fails.
//
// Errors: ErrInvalidGraph, ErrInvalidSnapshotKind; ErrUnavailable when NATS
// did not answer; ErrConflict when the index entry kept changing under it;
// ctx's error.
func (s *Snapshots) Put(ctx context.Context, info SnapshotInfo, data []byte) (SnapshotInfo, error) {
	info, err := s.put(ctx, info, data)
	if err == nil && s.cfg.Local != nil && s.cfg.Local.Keeps(info.Kind) {
		// Best effort, once the upload has let go of the pacing gate: the
		// stored snapshot is the record, the copy only makes a restart
		// faster (LocalSnapshots.Stats counts failures).
		_ = s.cfg.Local.Save(ctx, info, data, s.pace)
	}
	return info, err
}

func (s *Snapshots) put(ctx context.Context, info SnapshotInfo, data []byte) (SnapshotInfo, error) {
	name, err := info.name()
	if err != nil {
		return info, fmt.Errorf("put snapshot: %w", err)
	}
	info.Name, info.Size = name, int64(len(data))
	md := map[string]string{
		snapMetaKind:     string(info.Kind),
		snapMetaGraph:    info.Graph,
		snapMetaSeq:      strconv.FormatUint(info.Seq, 10),
		snapMetaPosition: strconv.FormatUint(info.Position, 10),
		snapMetaFormat:   strconv.FormatUint(uint64(info.Format), 10),
		snapMetaSize:     strconv.Itoa(len(data)),
		snapMetaCodec:    snapshotCodec,
	}
	if info.Head.Defined() {
		md[snapMetaHead] = info.Head.String()
	}
	o := info.sig()
	if o.Digest, err = s.digest(ctx, data); err != nil {
		return info, fmt.Errorf("put snapshot %s: %w", name, err)
	}
	maps.Copy(md, objectMeta(s.cfg.Signer, o))
	if s.cfg.Signer != nil {
		info.KeyID = s.cfg.Signer.KeyID()
	}
	// OpTimeout bounds a Put even under a longer deadline of the caller's:
	// the Object Store waits for the acknowledgement of every chunk it
	// published, and those of a NATS stream leader that died never come.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	if s.index != nil {
		if err := s.index.add(ctx, info.Kind, info.Graph, info.Seq); err != nil {
			return info, fmt.Errorf("put snapshot %s: %w", name, err)
		}
	}
	// The frames are compressed in parallel while the first ones are sent;
	// at LevelRaw they are read out of data as they are.
	var c *compressor
	chunk := s.chunk
	if level := s.cfg.level(info.Kind); level == LevelRaw {
		c = rawFrames(data)
		c.ctx, c.gate = ctx, s.pace
		chunk = uint32(max(min(int(chunk), c.size), 1))
	} else {
		c = s.compress(ctx, s.encs[level], data)
		switch len(c.frames) {
		case 0:
			chunk = 1
		case 1:
			// The Object Store allocates a chunk before reading: no more
			// than the one frame of a small snapshot.
			<-c.done[0]
			chunk = uint32(min(int(chunk), len(c.frames[0])))
		}
	}
	defer c.stop()
	oi, err := s.obj.Put(ctx, jetstream.ObjectMeta{
		Name:     name,
		Metadata: md,
		Opts:     &jetstream.ObjectMetaOptions{ChunkSize: chunk},
	}, c)
	if err != nil {
		return info, fmt.Errorf("put snapshot %s: %w", name, objectErr(err))
	}
	info.Stored, info.Created = int64(oi.Size), oi.ModTime
	if info.Stored != c.sent {
		return info, fmt.Errorf("put snapshot %s: stored %d bytes of %d", name, info.Stored, c.sent)
	}
	return info, nil
}

// digest returns the SHA-256 of data, hashed through the Snapshots' Gate
// (a MiB between steps) when it is larger than a MiB: over a 100 MB
// snapshot the hash is about 60 ms of CPU, background work like the
// encoding before it and the compression after it. It fails only when ctx
// ends before a slot is free.
func (s *Snapshots) digest(ctx context.Context, data []byte) ([sha256.Size]byte, error) {
	if len(data) <= 1<<20 {
		return wire.SHA256(data), nil
	}
	w, err := s.pace.Begin(ctx)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("wait to hash: %w", err)
	}
	defer w.End()
	return wire.SHA256Paced(data, func() { _ = w.Step(ctx) }), nil
}

// compressor compresses a payload into zstd frames of snapshotFrame raw
// bytes on up to half the GOMAXPROCS goroutines (at least one), paced by
// the Snapshots' Gate, and reads them out in order as soon as each is
// done. A snapshot is background work: it leaves the CPUs to commands and
// queries.
type compressor struct {
	frames [][]byte
	done   []chan struct{} // closed when frames[i] is compressed
	errs   []error         // why frames[i] was not compressed (set before done[i] closes)
	next   int             // the frame to read after cur
	cur    []byte          // the unread rest of frame next-1
	pieces [][]byte        // raw frames: what to read after cur, not copied
	size   int             // raw frames: their length in all
	// Raw frames: their reads (and so the Object Store's hashing and
	// publishing of each chunk, and the server's storing of it) are paced
	// by gate, from the first read until stop.
	ctx     context.Context
	gate    *pace.Gate
	w       *pace.Worker
	sent    int64 // bytes read out
	stopped atomic.Bool
	wg      sync.WaitGroup
}

// compress starts compressing data with enc. The caller reads the frames
// and must call stop.
func (s *Snapshots) compress(ctx context.Context, enc *zstd.Encoder, data []byte) *compressor {
	n := (len(data) + snapshotFrame - 1) / snapshotFrame
	c := &compressor{frames: make([][]byte, n), done: make([]chan struct{}, n), errs: make([]error, n)}
	for i := range c.done {
		c.done[i] = make(chan struct{})
	}
	var job atomic.Int64
	for range min(n, max(runtime.GOMAXPROCS(0)/2, 1)) {
		c.wg.Go(func() {
			// A frame that cannot wait for the gate (ctx ended) fails
			// the read.
			w, err := s.pace.Begin(ctx)
			defer w.End()
			for i := int(job.Add(1) - 1); i < n; i = int(job.Add(1) - 1) {
				switch {
				case err != nil:
					c.errs[i] = err
				case !c.stopped.Load():
					raw := data[i*snapshotFrame : min((i+1)*snapshotFrame, len(data))]
					c.frames[i] = enc.EncodeAll(raw, make([]byte, 0, len(raw)/2+64))
					err = w.Step(ctx)
				}
				close(c.done[i])
			}
		})
	}
	return c
}

// rawFrames returns a compressor that reads data out as zstd frames of
// snapshotFrame bytes each made of raw blocks, without copying data: each
// frame is the magic number, a single-segment header with the 4-byte
// content size, then blocks of up to zstdMaxBlock bytes, each behind its
// 3-byte header (last-block bit, type 0 = raw, size).
func rawFrames(data []byte) *compressor {
	frames := (len(data) + snapshotFrame - 1) / snapshotFrame
	blocks := (len(data) + zstdMaxBlock - 1) / zstdMaxBlock
	hdrs := make([]byte, 0, 9*frames+3*blocks)
	c := &compressor{pieces: make([][]byte, 0, frames+2*blocks)}
	for f := 0; f < len(data); f += snapshotFrame {
		frame := data[f:min(f+snapshotFrame, len(data))]
		at := len(hdrs)
		hdrs = binary.LittleEndian.AppendUint32(hdrs, 0xFD2FB528)
		hdrs = append(hdrs, 2<<6|1<<5) // content size in 4 bytes, single segment
		hdrs = binary.LittleEndian.AppendUint32(hdrs, uint32(len(frame)))
		c.pieces = append(c.pieces, hdrs[at:])
		for b := 0; b < len(frame); b += zstdMaxBlock {
			block := frame[b:min(b+zstdMaxBlock, len(frame))]
			h := len(block) << 3 // raw
			if b+len(block) == len(frame) {
				h |= 1 // the last
			}
			at := len(hdrs)
			hdrs = append(hdrs, byte(h), byte(h>>8), byte(h>>16))
			c.pieces = append(c.pieces, hdrs[at:], block)
		}
	}
	c.size = cap(hdrs) + len(data)
	return c
}

// Read fills p with the next compressed bytes, waiting for their frame:
// the Object Store makes a chunk of each read.
func (c *compressor) Read(p []byte) (int, error) {
	if c.gate != nil {
		if c.w == nil {
			w, err := c.gate.Begin(c.ctx)
			if err != nil {
				return 0, err
			}
			c.w = w
		} else if err := c.w.Step(c.ctx); err != nil {
			return 0, err
		}
	}
	n := 0
	for n < len(p) {
		if len(c.cur) == 0 && len(c.pieces) > 0 {
			c.cur, c.pieces = c.pieces[0], c.pieces[1:]
			continue
		}
		if len(c.cur) == 0 {
			if c.next == len(c.frames) {
				break
			}
			<-c.done[c.next]
			if err := c.errs[c.next]; err != nil {
				return n, fmt.Errorf("compress frame %d: %w", c.next, err)
			}
			c.cur, c.frames[c.next] = c.frames[c.next], nil
			c.next++
			continue
		}
		k := copy(p[n:], c.cur)
		c.cur, n = c.cur[k:], n+k
	}
	c.sent += int64(n)
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// stop skips the frames not started yet and waits for the goroutines.
func (c *compressor) stop() {
	c.stopped.Store(true)
	c.wg.Wait()
	c.w.End()
}

// List returns the snapshots of kind for graph ("" for every graph), newest
// (highest Seq) first, snapshots at the same Seq by graph id.
//
// The snapshots of one graph are found through the index when it is
// complete (a request for the graph's entry, then one for the metadata of
// each object it names, whatever the bucket holds besides); those of every
// graph, and of one graph without a complete index or when the index cannot
// be read, by listing the bucket (see listObjects). Stats counts which.
//
// A snapshot whose object metadata does not parse, or contradicts its name,
// is listed all the same, with only what its name says (Kind, Graph, Seq,
// Name, Stored, Created): Format 0, Position 0, Head undefined. A reader
// must not trust it and Get refuses it (ErrMalformed); listing it lets
// callers see it, count it and fall back to an older one.
//
// Errors: ErrInvalidGraph, ErrInvalidSnapshotKind; ErrUnavailable; ctx's
// error.
func (s *Snapshots) List(ctx context.Context, kind SnapshotKind, graph string) ([]SnapshotInfo, error) {
	if err := checkKind(kind); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	if graph != "" {
		if err := checkGraph(graph); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	out, _, err := s.list(ctx, kind, graph)
	return out, err
}

// list is List, which also returns the sequences the index named (nil when
// the bucket was listed).
func (s *Snapshots) list(ctx context.Context, kind SnapshotKind, graph string) ([]SnapshotInfo, []uint64, error) {
	var (
		objs    []*jetstream.ObjectInfo
		indexed []uint64
		ok      bool
	)
	if graph != "" {
		objs, indexed, ok = s.listIndexed(ctx, kind, graph)
	}
	if !ok {
		var err error
		objs, err = s.listObjects(ctx, func(k SnapshotKind, g string) bool {
			return k == kind && (graph == "" || g == graph)
		})
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return nil, nil, fmt.Errorf("list %s snapshots of %q: %w", kind, graph, objectErr(err))
		}
	}
	var out []SnapshotInfo
	for _, oi := range objs {
		k, g, seq, ok := ParseSnapshotName(oi.Name)
		if !ok || oi.Deleted || k != kind || (graph != "" && g != graph) {
			continue
		}
		info, err := parseSnapMeta(oi)
		if err != nil {
			info = SnapshotInfo{Kind: k, Graph: g, Seq: seq, Name: oi.Name}
		}
		info.Stored, info.Created = int64(oi.Size), oi.ModTime
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SnapshotInfo) int {
		if c := cmp.Compare(b.Seq, a.Seq); c != 0 {
			return c
		}
		return strings.Compare(a.Graph, b.Graph)
	})
	return out, indexed, nil
}

// listObjects returns the snapshot objects, deleted ones left out, whose
// name match accepts.
//
// It asks the server for the bucket's metadata subjects, one per object
// ("$O.<bucket>.M.<base64url(name)>", no payloads), decodes the names, and
// reads the last metadata message of the matches only, by direct get,
// listGets at a time: listing one graph reads 3 messages, not the bucket's
// 3,000. Every step is a request that answers or fails with ctx. An object
// deleted between the two steps has no message left, or a delete marker,
// and is left out; one put after the first step is not listed. Past
// 100,000 objects the server pages the subjects and a page may shift under
// concurrent deletes.
//
// It used to read the last message per subject through an ordered consumer
// until one said that nothing was pending: that count is the server's, and
// it moves while the consumer runs, as Puts roll subjects up and Deletes
// purge their markers. Under writes List chased them (the slowest of 100
// Lists in TestSnapshotsListConcurrent took 0.3 s, against 0.03 s now), and
// it was seen waiting for a message that never came until ctx's deadline.
func (s *Snapshots) listObjects(ctx context.Context, match func(SnapshotKind, string) bool) ([]*jetstream.ObjectInfo, error) {
	s.counters.listings.Add(1)
	return listBucket(ctx, s.stream, s.cfg.Bucket, func(name string) bool {
		k, g, _, ok := ParseSnapshotName(name)
		return ok && match(k, g)
	})
}

// listBucket returns the live objects of bucket (its stream st) whose
// names match: the metadata subjects from one stream-info request, then
// the last metadata message of each match. No consumer: nothing waits on
// a pending count that concurrent writes keep moving.
func listBucket(ctx context.Context, st jetstream.Stream, bucket string, match func(name string) bool) ([]*jetstream.ObjectInfo, error) {
	prefix := "$O." + bucket + ".M."
	si, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, err
	}
	var subjects, names []string
	for subj := range si.State.Subjects {
		raw, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(subj, prefix))
		if err != nil {
			continue
		}
		if match(string(raw)) {
			subjects, names = append(subjects, subj), append(names, string(raw))
		}
	}
	return lastMetas(ctx, st, subjects, names)
}

// lastMetas reads the last metadata message of each subject, listGets at a
// time, and returns the live objects among them whose name is names[i];
// subjects without a message, deleted objects and messages that do not
// decode are left out.
func lastMetas(ctx context.Context, st jetstream.Stream, subjects, names []string) ([]*jetstream.ObjectInfo, error) {
	objs := make([]*jetstream.ObjectInfo, len(subjects))
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		failed   atomic.Bool
	)
	for range min(len(subjects), listGets) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(subjects) && !failed.Load(); i = int(next.Add(1) - 1) {
				m, err := st.GetLastMsgForSubject(ctx, subjects[i])
				switch {
				case errors.Is(err, jetstream.ErrMsgNotFound): // deleted meanwhile
				case err != nil:
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
				default:
					var oi jetstream.ObjectInfo
					if json.Unmarshal(m.Data, &oi) == nil && !oi.Deleted && oi.Name == names[i] {
						oi.ModTime = m.Time
						objs[i] = &oi
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return slices.DeleteFunc(objs, func(oi *jetstream.ObjectInfo) bool { return oi == nil }), nil
}

// listGets is how many metadata messages List asks for at once.
const listGets = 16

// parseSnapMeta reads a snapshot's info from its object's metadata and
// checks it against the object's name.
func parseSnapMeta(oi *jetstream.ObjectInfo) (SnapshotInfo, error) {
	md := oi.Metadata
	info := SnapshotInfo{Kind: SnapshotKind(md[snapMetaKind]), Graph: md[snapMetaGraph], Name: oi.Name}
	var errs []error
	num := func(key string, bits int) uint64 {
		v, err := strconv.ParseUint(md[key], 10, bits)
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata %s: %q is not a number", key, md[key]))
		}
		return v
	}
	info.Seq = num(snapMetaSeq, 64)
	info.Position = num(snapMetaPosition, 64)
	info.Format = uint32(num(snapMetaFormat, 32))
	info.Size = int64(num(snapMetaSize, 63))
	if h, ok := md[snapMetaHead]; ok {
		c, err := cid.Decode(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata %s: %q is not a CID", snapMetaHead, h))
		}
		info.Head = c
	}
	if c := md[snapMetaCodec]; c != snapshotCodec {
		errs = append(errs, fmt.Errorf("metadata %s: unknown codec %q", snapMetaCodec, c))
	}
	if len(errs) == 0 {
		if name, err := info.name(); err != nil || name != oi.Name {
			errs = append(errs, fmt.Errorf("metadata names %s/%s/%d, not the object", info.Kind, info.Graph, info.Seq))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return SnapshotInfo{}, fmt.Errorf("%w: snapshot %s: %w", ErrMalformed, oi.Name, err)
	}
	info.Stored, info.Created, info.KeyID = int64(oi.Size), oi.ModTime, md[MetaSigKey]
	return info, nil
}

// sig is what a snapshot's signature covers but the payload digest.
func (info SnapshotInfo) sig() ObjectSig {
	return ObjectSig{Kind: string(info.Kind), Graph: info.Graph, Seq: info.Seq, Position: info.Position, Head: info.Head}
}

// Get returns a snapshot's payload, decompressed. A snapshot that cannot be
// read back whole (digest, decompression or size mismatch) is ErrMalformed.
//
// info names the snapshot by Name, or by Kind, Graph and Seq when Name is
// empty. Its Position, Head, Format and Size, where not zero, must be what
// is stored: a snapshot replaced since it was listed is ErrConflict, so the
// payload returned is the one whose head the caller checked.
//
// The payload's SHA-256 must be the one its metadata holds (ErrMalformed;
// a snapshot written without one is refused too), and with
// SnapshotConfig.Trust its signature must hold (ErrSignature).
//
// Errors: ErrNotFound, ErrMalformed, ErrSignature, ErrConflict,
// ErrInvalidGraph, ErrInvalidSnapshotKind, ErrUnavailable, ctx's error.
func (s *Snapshots) Get(ctx context.Context, info SnapshotInfo) ([]byte, error) {
	name := info.Name
	if name == "" {
		var err error
		if name, err = info.name(); err != nil {
			return nil, fmt.Errorf("get snapshot: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	oi, err := s.obj.GetInfo(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get snapshot %s: %w", name, objectErr(err))
	}
	stored, err := parseSnapMeta(oi)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if err := sameSnapshot(info, stored); err != nil {
		return nil, fmt.Errorf("get snapshot %s: %w: %w", name, ErrConflict, err)
	}
	// The object's chunks by direct gets first (no consumer, so no meta
	// leader needed), else through the Object Store.
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(readObjectDirect(ctx, s.nc, s.stream.CachedInfo().Config.Name, s.cfg.Bucket, oi, pw))
	}()
	data, ioErr, err := s.readDecode(pr, oi.Size, stored.Size)
	_ = pr.CloseWithError(errReadDone) // the writer stops, if it has not
	if ioErr == nil {
		s.counters.directGets.Add(1)
	} else if ctx.Err() == nil {
		res, gerr := s.obj.Get(ctx, name)
		if gerr != nil {
			return nil, fmt.Errorf("get snapshot %s: %w", name, objectErr(gerr))
		}
		defer res.Close()
		roi, gerr := res.Info()
		if gerr != nil {
			return nil, fmt.Errorf("get snapshot %s: %w", name, objectErr(gerr))
		}
		if roi.NUID != oi.NUID {
			return nil, fmt.Errorf("get snapshot %s: %w: the object was replaced while it was read", name, ErrConflict)
		}
		data, ioErr, err = s.readDecode(res, oi.Size, stored.Size)
	}
	if ioErr != nil {
		if ctx.Err() != nil && !errors.Is(ioErr, context.Canceled) {
			ioErr = fmt.Errorf("%w: %w", ErrUnavailable, ioErr)
		}
		return nil, fmt.Errorf("get snapshot %s: %w", name, objectErr(ioErr))
	}
	if err != nil {
		return nil, fmt.Errorf("get snapshot %s: %w: %w", name, ErrMalformed, err)
	}
	o := stored.sig()
	o.Digest = wire.SHA256(data)
	if err := s.cfg.Trust.checkObject(oi.Metadata, o, true); err != nil {
		return nil, fmt.Errorf("get snapshot %s: %w", name, err)
	}
	return data, nil
}

// errReadDone stops a direct read whose reader has finished.
var errReadDone = errors.New("snapshot read finished")

// sameSnapshot checks the fields of want that are set against got.
func sameSnapshot(want, got SnapshotInfo) error {
	switch {
	case want.Position != 0 && want.Position != got.Position:
		return fmt.Errorf("position is %d, not %d", got.Position, want.Position)
	case want.Head.Defined() && !want.Head.Equals(got.Head):
		return fmt.Errorf("head is %s, not %s", got.Head, want.Head)
	case want.Format != 0 && want.Format != got.Format:
		return fmt.Errorf("format is %d, not %d", got.Format, want.Format)
	case want.Size != 0 && want.Size != got.Size:
		return fmt.Errorf("size is %d, not %d", got.Size, want.Size)
	}
	return nil
}

// readDecode reads an object of stored bytes from r and returns the size
// bytes it decompresses to. It decodes each frame on a worker as soon as it
// has been read, so that reading and decoding overlap; frames that are not
// as Put writes them (no content size, say) are decoded in one go at the
// end. It never decodes more than size bytes. The data is returned only
// once r said EOF, which is when the Object Store has checked the digest.
// ioErr is a failure to read the object, err a payload that is not the
// snapshot.
func (s *Snapshots) readDecode(r io.Reader, stored uint64, size int64) (data []byte, ioErr, err error) {
	comp := make([]byte, stored+1) // a byte more: to see an object too long
	out := make([]byte, size)
	d := s.newFrameDecoder(int((size + snapshotFrame - 1) / snapshotFrame))
	n, p, off, split := 0, 0, uint64(0), true
	for {
		k, err := r.Read(comp[n:])
		n += k
		for split && p < n {
			l, fcs, ok := frameLen(comp[p:n])
			if !ok || fcs > uint64(size)-off {
				split = false // decoded in one go below, or refused there
				break
			}
			if l == 0 {
				break // the rest of the frame is still to come
			}
			d.add(comp[p:p+l], out[off:off:off+fcs])
			p, off = p+l, off+fcs
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			d.wait()
			return nil, err, nil
		}
		if n == len(comp) {
			d.wait()
			return nil, nil, fmt.Errorf("the object is longer than its %d bytes", stored)
		}
	}
	errs := d.wait()
	switch {
	case uint64(n) != stored:
		return nil, nil, fmt.Errorf("read %d bytes, the object has %d", n, stored)
	case split && p == n && off == uint64(size):
		if errs != nil {
			return nil, nil, errs
		}
		return out, nil, nil
	}
	got, err := s.dec.DecodeAll(comp[:n], out[:0])
	if err != nil {
		return nil, nil, err
	}
	if int64(len(got)) != size {
		return nil, nil, fmt.Errorf("decompressed %d bytes, metadata says %d", len(got), size)
	}
	return got, nil, nil
}

// frameLen returns the length of the zstd frame that b starts with and its
// content size; l is 0 when the frame does not end within b. ok is false
// when b does not start with a frame as Put writes them: a skippable frame,
// a frame without a content size, a reserved block type, a block too big.
func frameLen(b []byte) (l int, fcs uint64, ok bool) {
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		return 0, 0, errors.Is(err, io.ErrUnexpectedEOF)
	}
	if h.Skippable || !h.HasFCS {
		return 0, 0, false
	}
	p := h.HeaderSize
	for {
		if p+3 > len(b) {
			return 0, 0, true
		}
		bh := int(b[p]) | int(b[p+1])<<8 | int(b[p+2])<<16
		p += 3
		size := bh >> 3
		if size > zstdMaxBlock {
			return 0, 0, false
		}
		switch (bh >> 1) & 3 {
		case 0, 2: // raw, compressed
			p += size
		case 1: // RLE: one byte
			p++
		default:
			return 0, 0, false
		}
		if bh&1 != 0 { // the last block
			break
		}
	}
	if h.HasCheckSum {
		p += 4
	}
	if p > len(b) {
		return 0, 0, true
	}
	return p, h.FrameContentSize, true
}

// frameDecoder decodes frames into their place in the payload on up to
// GOMAXPROCS goroutines.
type frameDecoder struct {
	dec    *zstd.Decoder
	jobs   chan frameJob
	queued int
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

type frameJob struct {
	i        int
	src, dst []byte // dst: empty, with the frame's content size as capacity
}

// newFrameDecoder starts the workers for about frames frames.
func (s *Snapshots) newFrameDecoder(frames int) *frameDecoder {
	d := &frameDecoder{dec: s.dec, jobs: make(chan frameJob, max(frames, 1))}
	for range max(1, min(frames, runtime.GOMAXPROCS(0))) {
		d.wg.Go(func() {
			for j := range d.jobs {
				got, err := d.dec.DecodeAll(j.src, j.dst)
				if err == nil && len(got) != cap(j.dst) {
					err = fmt.Errorf("decompressed %d bytes, its header says %d", len(got), cap(j.dst))
				}
				if err != nil {
					d.mu.Lock()
					d.errs = append(d.errs, fmt.Errorf("frame %d: %w", j.i, err))
					d.mu.Unlock()
				}
			}
		})
	}
	return d
}

// add queues one frame.
func (d *frameDecoder) add(src, dst []byte) {
	d.jobs <- frameJob{i: d.queued, src: src, dst: dst}
	d.queued++
}

// wait waits for the queued frames and returns their errors, joined.
func (d *frameDecoder) wait() error {
	close(d.jobs)
	d.wg.Wait()
	return errors.Join(d.errs...)
}

// Delete removes one snapshot, named by info.Name or by its Kind, Graph and
// Seq when Name is empty, then its index entry (also when the object was
// not found: the entry named nothing). The index update is best effort: an
// entry left behind names an object that is not found, which List leaves
// out and Prune drops.
//
// Errors: ErrNotFound, ErrInvalidGraph, ErrInvalidSnapshotKind,
// ErrUnavailable, ctx's error.
func (s *Snapshots) Delete(ctx context.Context, info SnapshotInfo) error {
	name := info.Name
	if name == "" {
		var err error
		if name, err = info.name(); err != nil {
			return fmt.Errorf("delete snapshot: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	err := s.deleteObject(ctx, name)
	if s.index != nil && (err == nil || errors.Is(err, ErrNotFound)) {
		if k, g, seq, ok := ParseSnapshotName(name); ok {
			_ = s.index.remove(ctx, k, g, func(x uint64) bool { return x == seq })
		}
	}
	return err
}

// deleteObject deletes the object name and drops its delete marker.
func (s *Snapshots) deleteObject(ctx context.Context, name string) error {
	// The Object Store deletes a deleted object again without a word.
	if _, err := s.obj.GetInfo(ctx, name); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", name, objectErr(err))
	}
	if s.cfg.Local != nil {
		if k, g, seq, ok := ParseSnapshotName(name); ok {
			s.cfg.Local.Remove(SnapshotInfo{Kind: k, Graph: g, Seq: seq})
		}
	}
	if err := s.obj.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", name, objectErr(err))
	}
	s.dropDeleteMarker(ctx, name)
	return nil
}

// dropDeleteMarker removes the marker the Object Store leaves for a deleted
// object: otherwise every snapshot ever pruned would stay in the bucket and
// be read by every List. It purges the marker and what came before it on
// the object's metadata subject, never a Put that came after. Best effort:
// a marker left over costs only its bytes.
func (s *Snapshots) dropDeleteMarker(ctx context.Context, name string) {
	subj := "$O." + s.cfg.Bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
	m, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return
	}
	var oi jetstream.ObjectInfo
	if json.Unmarshal(m.Data, &oi) != nil || !oi.Deleted || oi.Name != name {
		return
	}
	_ = s.stream.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(m.Sequence+1))
}

// Prune keeps graph's newest keep snapshots of kind and deletes the others.
// It returns how many it deleted; snapshots deleted meanwhile by someone
// else are not counted. It finds them as List does (through the index when
// it is complete) and then drops from the index what it deleted and the
// entries older than the oldest snapshot it kept that name no object (a
// newer one may be a Put under way), in one update.
//
// Errors: ErrInvalidGraph, ErrInvalidSnapshotKind, a negative keep,
// ErrUnavailable, ctx's error.
func (s *Snapshots) Prune(ctx context.Context, kind SnapshotKind, graph string, keep int) (int, error) {
	if err := checkGraph(graph); err != nil {
		return 0, fmt.Errorf("prune snapshots: %w", err)
	}
	if keep < 0 {
		return 0, fmt.Errorf("prune %s snapshots of %s: keep %d is negative", kind, graph, keep)
	}
	if err := checkKind(kind); err != nil {
		return 0, fmt.Errorf("prune snapshots: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	infos, indexed, err := s.list(ctx, kind, graph)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	kept := infos[:min(keep, len(infos))]
	gone := map[uint64]bool{}
	deleted := 0
	var errs []error
	for _, info := range infos[len(kept):] {
		err := s.deleteObject(ctx, info.Name)
		switch {
		case errors.Is(err, ErrNotFound):
			gone[info.Seq] = true
		case err != nil:
			errs = append(errs, err)
		default:
			gone[info.Seq] = true
			deleted++
		}
	}
	if s.index != nil {
		listed := map[uint64]bool{}
		for _, info := range infos {
			listed[info.Seq] = true
		}
		oldest := uint64(0)
		if len(kept) == keep && keep > 0 {
			oldest = kept[len(kept)-1].Seq
		}
		for _, seq := range indexed {
			if !listed[seq] && seq < oldest {
				gone[seq] = true
			}
		}
		if len(gone) > 0 {
			if err := s.index.remove(ctx, kind, graph, func(seq uint64) bool { return gone[seq] }); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return deleted, fmt.Errorf("prune %s snapshots of %s: %w", kind, graph, err)
	}
	return deleted, nil
}

// objectErr maps Object Store failures to this package's sentinels, keeping
// the original error in the chain; the rest go through translate.
func objectErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrObjectNotFound), errors.Is(err, jetstream.ErrBucketNotFound),
		errors.Is(err, jetstream.ErrNoObjectsFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, jetstream.ErrDigestMismatch), errors.Is(err, jetstream.ErrBadObjectMeta),
		errors.Is(err, jetstream.ErrInvalidDigestFormat):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotFound), errors.Is(err, ErrMalformed):
		return err
	}
	return translate(err)
}
