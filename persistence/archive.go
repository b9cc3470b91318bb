package persistence

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/wire"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// ErrNoObjects: the Store was opened without WithObjects, so it has no
// archives to write or read.
var ErrNoObjects = errors.New("no object store: the event store was opened without WithObjects")

// ArchiveFormat is the version of the archive object format that Archive
// writes and the only one the readers accept.
const ArchiveFormat = 1

// Default archive segment limits: an archive object holds at most this many
// transactions or this many uncompressed payload bytes (a single larger
// transaction gets an object of its own).
const (
	DefaultArchiveSegmentTransactions = 10_000
	DefaultArchiveSegmentBytes        = 8 << 20
)

// archiveMagic starts every archive payload.
const archiveMagic = "CAIRNARC"

// archives is the Store's archive configuration and codec.
type archives struct {
	obj      jetstream.ObjectStore
	segTx    int
	segBytes int

	streamMu sync.Mutex
	stream   jetstream.Stream // the bucket's stream, looked up on first use
	bucket   string

	once sync.Once
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
}

func (a *archives) codec() (*zstd.Encoder, *zstd.Decoder, error) {
	a.once.Do(func() {
		a.enc, a.err = zstd.NewWriter(nil)
		if a.err == nil {
			// One archive is a few MiB: refuse absurd frames.
			a.dec, a.err = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<30))
		}
	})
	return a.enc, a.dec, a.err
}

// StoreOption is an optional behaviour of a Store.
type StoreOption func(*Store)

// WithObjects lets the store keep archives in obj (the snapshot bucket):
// Archive moves old transactions there, and Read, ReadScan, Verify, GetGraph,
// CheckHead, SeqAtTime and FindEvent read across archive and stream. An
// archive object is named "archive/<graph>/<from seq, 20 digits>-<to seq, 20
// digits>". Without it, Archive and Archives fail with
// ErrNoObjects and every read is stream-only.
func WithObjects(obj jetstream.ObjectStore) StoreOption {
	return func(s *Store) { s.arc.obj = obj }
}

// WithArchiveSegments sets how many transactions (maxTransactions) and how
// many uncompressed payload bytes (maxBytes) one archive object holds at
// most; a value of 0 or less keeps the default
// (DefaultArchiveSegmentTransactions, DefaultArchiveSegmentBytes).
func WithArchiveSegments(maxTransactions, maxBytes int) StoreOption {
	return func(s *Store) {
		if maxTransactions > 0 {
			s.arc.segTx = maxTransactions
		}
		if maxBytes > 0 {
			s.arc.segBytes = maxBytes
		}
	}
}

// ArchiveInfo describes one archive object: a run of one graph's
// transactions moved out of the stream.
type ArchiveInfo struct {
	Graph          string
	FromSeq, ToSeq uint64 // stream sequences of its first and last transaction
	FromN, ToN     uint64 // chain positions of its first and last event
	Transactions   int
	Name           string // "archive/<graph>/<from seq, 20 digits>-<to seq, 20 digits>"
	Size, Stored   int64
}

// ArchiveProgress reports a running Archive.
type ArchiveProgress struct {
	Transactions int   // archived so far
	Objects      int   // archive objects written so far
	Bytes        int64 // payload bytes so far
}

// ArchiveResult says what Archive did.
type ArchiveResult struct {
	Graph        string
	Before       uint64 // the bound used: transactions with Seq < Before
	Transactions int
	Objects      []ArchiveInfo
	Purged       uint64 // messages removed from the stream
}

// archiveEntry is an archive object as its metadata describes it.
type archiveEntry struct {
	ArchiveInfo
	prev, head       Head              // the chain before its first event and at its last
	fromTime, toTime int64             // stream times of its first and last transaction, Unix ns
	md               map[string]string // the object's metadata, as stored
}

// sig is what the archive's signature covers but the payload digest.
func (e archiveEntry) sig() ObjectSig {
	return ObjectSig{Kind: "archive", Graph: e.Graph, Seq: e.ToSeq, Position: e.ToN, Head: e.head.CID}
}

// archiveRecord is one transaction as an archive holds it.
type archiveRecord struct {
	seq  uint64
	ts   int64 // stream time, Unix ns
	data []byte
}

func (r archiveRecord) record() (Record, error) {
	return decodeRecord(r.seq, time.Unix(0, r.ts), r.data)
}

func archiveName(graph string, from, to uint64) string {
	return fmt.Sprintf("archive/%s/%020d-%020d", graph, from, to)
}

// Archive payload (zstd-compressed as a whole):
//
//	"CAIRNARC"  magic, 8 bytes
//	uvarint     format version (ArchiveFormat)
//	uvarint     length of the graph id, then the graph id
//	then per transaction, in stream order:
//	uvarint     stream sequence
//	varint      stream time, Unix nanoseconds
//	uvarint     length of the transaction, then the transaction's protobuf
//	            bytes exactly as the stream held them
func appendArchiveHeader(dst []byte, graph string) []byte {
	dst = append(dst, archiveMagic...)
	dst = binary.AppendUvarint(dst, ArchiveFormat)
	dst = binary.AppendUvarint(dst, uint64(len(graph)))
	return append(dst, graph...)
}

func appendArchiveRecord(dst []byte, seq uint64, ts int64, data []byte) []byte {
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendVarint(dst, ts)
	dst = binary.AppendUvarint(dst, uint64(len(data)))
	return append(dst, data...)
}

// decodeArchive parses an uncompressed archive payload of graph. The records
// share raw's memory.
func decodeArchive(name, graph string, raw []byte) ([]archiveRecord, error) {
	bad := func(msg string, args ...any) error {
		return fmt.Errorf("archive %s: %w: %s", name, ErrMalformed, fmt.Sprintf(msg, args...))
	}
	if !bytes.HasPrefix(raw, []byte(archiveMagic)) {
		return nil, bad("no archive magic")
	}
	p := raw[len(archiveMagic):]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	v, ok := uv()
	if !ok {
		return nil, bad("truncated header")
	}
	if v != ArchiveFormat {
		return nil, bad("unknown format version %d (want %d)", v, ArchiveFormat)
	}
	gl, ok := uv()
	if !ok || gl > uint64(len(p)) {
		return nil, bad("truncated header")
	}
	if g := string(p[:gl]); g != graph {
		return nil, bad("holds graph %q, not %q", g, graph)
	}
	p = p[gl:]
	var recs []archiveRecord
	for len(p) > 0 {
		seq, ok := uv()
		if !ok {
			return nil, bad("truncated record %d", len(recs))
		}
		ts, n := binary.Varint(p)
		if n <= 0 {
			return nil, bad("truncated record %d", len(recs))
		}
		p = p[n:]
		l, ok := uv()
		if !ok || l > uint64(len(p)) {
			return nil, bad("truncated record %d (seq %d)", len(recs), seq)
		}
		if len(recs) > 0 && seq <= recs[len(recs)-1].seq {
			return nil, bad("seq %d after seq %d", seq, recs[len(recs)-1].seq)
		}
		recs = append(recs, archiveRecord{seq: seq, ts: ts, data: p[:l:l]})
		p = p[l:]
	}
	return recs, nil
}

// Metadata keys of an archive object.
const (
	metaKind     = "cairn-kind"
	metaGraph    = "graph"
	metaFormat   = "format"
	metaFromSeq  = "from-seq"
	metaToSeq    = "to-seq"
	metaFromN    = "from-n"
	metaToN      = "to-n"
	metaPrev     = "prev-cid"
	metaHead     = "head-cid"
	metaFromTime = "from-time"
	metaToTime   = "to-time"
	metaCount    = "count"
	metaSize     = "size"
)

func (e archiveEntry) metadata() map[string]string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return map[string]string{
		metaKind:     "archive",
		metaGraph:    e.Graph,
		metaFormat:   strconv.Itoa(ArchiveFormat),
		metaFromSeq:  u(e.FromSeq),
		metaToSeq:    u(e.ToSeq),
		metaFromN:    u(e.FromN),
		metaToN:      u(e.ToN),
		metaPrev:     cidOrEmpty(e.prev.CID),
		metaHead:     cidOrEmpty(e.head.CID),
		metaFromTime: strconv.FormatInt(e.fromTime, 10),
		metaToTime:   strconv.FormatInt(e.toTime, 10),
		metaCount:    strconv.Itoa(e.Transactions),
		metaSize:     strconv.FormatInt(e.Size, 10),
	}
}

func cidOrEmpty(c cid.Cid) string {
	if !c.Defined() {
		return ""
	}
	return c.String()
}

// ParseArchiveName reads an archive object's name
// ("archive/<graph>/<from seq>-<to seq>", 20 digits each): the graph and
// the stream sequences of its first and last transaction. ok is false for
// any other name.
func ParseArchiveName(name string) (graph string, from, to uint64, ok bool) {
	rest, found := strings.CutPrefix(name, "archive/")
	i := strings.LastIndexByte(rest, '/')
	if !found || i <= 0 {
		return "", 0, 0, false
	}
	graph, rest = rest[:i], rest[i+1:]
	if len(rest) != 41 || rest[20] != '-' {
		return "", 0, 0, false
	}
	from, err1 := strconv.ParseUint(rest[:20], 10, 64)
	to, err2 := strconv.ParseUint(rest[21:], 10, 64)
	if err1 != nil || err2 != nil || checkGraph(graph) != nil {
		return "", 0, 0, false
	}
	return graph, from, to, true
}

// parseArchiveEntry reads an archive object's name and metadata. ok is false
// when the object is no archive of graph.
func parseArchiveEntry(oi *jetstream.ObjectInfo, graph string) (e archiveEntry, ok bool, err error) {
	prefix := "archive/" + graph + "/"
	rest, found := strings.CutPrefix(oi.Name, prefix)
	if !found || len(rest) != 41 || rest[20] != '-' {
		return e, false, nil
	}
	from, err1 := strconv.ParseUint(rest[:20], 10, 64)
	to, err2 := strconv.ParseUint(rest[21:], 10, 64)
	if err1 != nil || err2 != nil {
		return e, false, nil
	}
	bad := func(msg string, args ...any) error {
		return fmt.Errorf("archive %s: %w: %s", oi.Name, ErrMalformed, fmt.Sprintf(msg, args...))
	}
	m := oi.Metadata
	if m[metaKind] != "archive" || m[metaGraph] != graph {
		return e, false, bad("metadata does not describe an archive of graph %s", graph)
	}
	if m[metaFormat] != strconv.Itoa(ArchiveFormat) {
		return e, false, bad("unknown format version %q (want %d)", m[metaFormat], ArchiveFormat)
	}
	var errs []error
	u := func(k string) uint64 {
		v, err := strconv.ParseUint(m[k], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q", k, m[k]))
		}
		return v
	}
	i := func(k string) int64 {
		v, err := strconv.ParseInt(m[k], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q", k, m[k]))
		}
		return v
	}
	c := func(k string) cid.Cid {
		if m[k] == "" {
			return cid.Undef
		}
		v, err := cid.Decode(m[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q", k, m[k]))
		}
		return v
	}
	e = archiveEntry{
		ArchiveInfo: ArchiveInfo{
			Graph: graph, FromSeq: u(metaFromSeq), ToSeq: u(metaToSeq), FromN: u(metaFromN), ToN: u(metaToN),
			Transactions: int(u(metaCount)), Name: oi.Name, Size: i(metaSize), Stored: int64(oi.Size),
		},
		fromTime: i(metaFromTime), toTime: i(metaToTime), md: m,
	}
	e.prev = Head{N: e.FromN - 1, CID: c(metaPrev)}
	e.head = Head{N: e.ToN, CID: c(metaHead)}
	if len(errs) > 0 {
		return e, false, bad("metadata: %v", errors.Join(errs...))
	}
	if e.FromSeq != from || e.ToSeq != to || from > to || e.FromN == 0 || e.FromN > e.ToN || e.Transactions <= 0 {
		return e, false, bad("metadata does not match the name: seqs %d-%d, positions %d-%d, %d transactions", e.FromSeq, e.ToSeq, e.FromN, e.ToN, e.Transactions)
	}
	return e, true, nil
}

func (s *Store) needObjects(op, graph string) error {
	if err := checkGraph(graph); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if s.arc.obj == nil {
		return fmt.Errorf("%s %s: %w", op, graph, ErrNoObjects)
	}
	return nil
}

// Archives lists graph's archive objects in sequence order.
//
// Errors: ErrNoObjects without WithObjects; ErrInvalidGraph; ErrMalformed
// when an archive's metadata does not parse or two archives overlap;
// ErrUnavailable; ctx's error.
func (s *Store) Archives(ctx context.Context, graph string) ([]ArchiveInfo, error) {
	if err := s.needObjects("archives", graph); err != nil {
		return nil, err
	}
	es, err := s.listArchives(ctx, graph)
	if err != nil {
		return nil, err
	}
	out := make([]ArchiveInfo, len(es))
	for i, e := range es {
		out[i] = e.ArchiveInfo
	}
	return out, nil
}

// listArchives returns graph's archive entries in sequence order; nil
// without an object store.
func (s *Store) listArchives(ctx context.Context, graph string) ([]archiveEntry, error) {
	if s.arc.obj == nil {
		return nil, nil
	}
	lctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	st, bucket, err := s.objectStream(lctx)
	if err != nil {
		return nil, fmt.Errorf("list archives of %s: %w", graph, objectErr(err))
	}
	prefix := "archive/" + graph + "/"
	objs, err := listBucket(lctx, st, bucket, func(name string) bool { return strings.HasPrefix(name, prefix) })
	if err != nil {
		return nil, fmt.Errorf("list archives of %s: %w", graph, objectErr(err))
	}
	var es []archiveEntry
	for _, oi := range objs {
		e, ok, err := parseArchiveEntry(oi, graph)
		if err != nil {
			return nil, err
		}
		if ok {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b archiveEntry) int {
		switch {
		case a.FromSeq < b.FromSeq:
			return -1
		case a.FromSeq > b.FromSeq:
			return 1
		}
		return 0
	})
	for i := 1; i < len(es); i++ {
		if es[i].FromSeq <= es[i-1].ToSeq || es[i].FromN != es[i-1].ToN+1 {
			return nil, fmt.Errorf("archives of %s: %w: %s (seqs %d-%d, events %d-%d) does not follow %s (seqs %d-%d, events %d-%d)",
				graph, ErrMalformed, es[i].Name, es[i].FromSeq, es[i].ToSeq, es[i].FromN, es[i].ToN,
				es[i-1].Name, es[i-1].FromSeq, es[i-1].ToSeq, es[i-1].FromN, es[i-1].ToN)
		}
	}
	return es, nil
}

// objectStream returns the stream behind the archive bucket, looked up
// once.
func (s *Store) objectStream(ctx context.Context) (jetstream.Stream, string, error) {
	a := &s.arc
	a.streamMu.Lock()
	defer a.streamMu.Unlock()
	if a.stream == nil {
		status, err := a.obj.Status(ctx)
		if err != nil {
			return nil, "", err
		}
		st, err := s.js.Stream(ctx, "OBJ_"+status.Bucket())
		if err != nil {
			return nil, "", err
		}
		a.stream, a.bucket = st, status.Bucket()
	}
	return a.stream, a.bucket, nil
}

// loadArchive reads an archive object back whole (the Object Store checks
// its digest), decompresses and decodes it and checks it against its
// metadata. It returns the records and the uncompressed payload.
func (s *Store) loadArchive(ctx context.Context, e archiveEntry) ([]archiveRecord, []byte, error) {
	_, dec, err := s.arc.codec()
	if err != nil {
		return nil, nil, fmt.Errorf("archive %s: zstd: %w", e.Name, err)
	}
	gctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	data, err := s.arc.obj.GetBytes(gctx, e.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("read archive %s: %w", e.Name, objectErr(err))
	}
	raw, err := dec.DecodeAll(data, make([]byte, 0, max(min(e.Size, 64<<20), 0)))
	if err != nil {
		return nil, nil, fmt.Errorf("archive %s: %w: decompress: %v", e.Name, ErrMalformed, err)
	}
	if int64(len(raw)) != e.Size {
		return nil, nil, fmt.Errorf("archive %s: %w: %d bytes uncompressed, metadata says %d", e.Name, ErrMalformed, len(raw), e.Size)
	}
	o := e.sig()
	o.Digest = wire.SHA256(raw)
	// Archives written before payload digests are read without one,
	// unless signatures are checked.
	if err := s.trust.checkObject(e.md, o, false); err != nil {
		return nil, nil, fmt.Errorf("archive %s: %w", e.Name, err)
	}
	recs, err := decodeArchive(e.Name, e.Graph, raw)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) != e.Transactions || recs[0].seq != e.FromSeq || recs[len(recs)-1].seq != e.ToSeq {
		return nil, nil, fmt.Errorf("archive %s: %w: holds %d transactions (seqs %d-%d), metadata says %d (seqs %d-%d)",
			e.Name, ErrMalformed, len(recs), firstSeqOf(recs), lastSeqOf(recs), e.Transactions, e.FromSeq, e.ToSeq)
	}
	return recs, raw, nil
}

func firstSeqOf(recs []archiveRecord) uint64 {
	if len(recs) == 0 {
		return 0
	}
	return recs[0].seq
}

func lastSeqOf(recs []archiveRecord) uint64 {
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].seq
}

// checkArchive chain-checks an archive's records from e.prev on (their
// signatures too with a keyring) and checks that they end at e.head.
func checkArchive(e archiveEntry, recs []archiveRecord, trust *Keyring) error {
	chain := NewChainAt(e.Graph, e.prev, WithTrust(trust))
	for _, r := range recs {
		rec, err := r.record()
		if err != nil {
			return fmt.Errorf("archive %s: %w", e.Name, err)
		}
		if _, err := chain.Check(r.seq, rec.Tx); err != nil {
			return fmt.Errorf("archive %s: %w", e.Name, err)
		}
	}
	if h := chain.Head(); h != e.head {
		return fmt.Errorf("archive %s: %w", e.Name, &ChainError{Graph: e.Graph, Seq: e.ToSeq, Position: h.N,
			Reason: "archive head does not match its metadata", Want: fmt.Sprintf("%d %s", e.head.N, linkString(e.head.CID)),
			Got: fmt.Sprintf("%d %s", h.N, linkString(h.CID))})
	}
	return nil
}

// segment is an archive object being filled.
type segment struct {
	entry archiveEntry
	buf   []byte
}

// Archive moves graph's transactions with a stream sequence below before
// into compressed archive objects and then removes them from the stream.
// It never removes the graph's last transaction (before is lowered to it
// when higher), so optimistic concurrency keeps working. It is safe while
// the graph is being written to: new transactions get higher sequences and
// the purge removes only graph's messages below the bound. The policy of
// what to archive (for example: older than the oldest kept snapshot) is the
// caller's.
//
// Each archive object holds up to WithArchiveSegments' limits of
// consecutive transactions and is read back and checked (digest,
// decompression, format, chain from the previous archive's head, count)
// before anything is removed. It is resumable: after a crash between
// writing objects and purging, the next Archive checks the archives whose
// transactions are still in the stream against the stream, writes only
// what is not archived yet, and purges. progress, when not nil, is called
// after each object written. Two Archive calls on the same graph must not
// run at once.
//
// Errors: ErrNoObjects without WithObjects; ErrInvalidGraph; ErrNotFound
// when graph has no transactions; a *ChainError (ErrChainBroken) when the
// stream's or an archive's chain does not hold or an archive differs from
// the stream; ErrMalformed when an archive does not read back; ErrUnavailable;
// ctx's error. On error nothing has been purged unless the error says the
// purge failed.
func (s *Store) Archive(ctx context.Context, graph string, before uint64, progress func(ArchiveProgress)) (ArchiveResult, error) {
	res := ArchiveResult{Graph: graph}
	if err := s.needObjects("archive", graph); err != nil {
		return res, err
	}
	enc, _, err := s.arc.codec()
	if err != nil {
		return res, fmt.Errorf("archive %s: zstd: %w", graph, err)
	}
	last, err := s.LastSeq(ctx, graph)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", graph, err)
	}
	if last == 0 {
		return res, fmt.Errorf("archive %s: %w: graph has no transactions", graph, ErrNotFound)
	}
	bound := min(before, last)
	res.Before = bound
	entries, err := s.listArchives(ctx, graph)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", graph, err)
	}
	var head Head
	var archivedTo uint64
	if len(entries) > 0 {
		head, archivedTo = entries[len(entries)-1].head, entries[len(entries)-1].ToSeq
	}
	first, _, err := s.firstFrom(ctx, graph, 1)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", graph, err)
	}
	if first == 0 || first >= bound {
		return res, nil // nothing of graph's in the stream below the bound
	}

	// Archives whose transactions are still in the stream (a crash before
	// the purge) are checked and then compared with the stream.
	cur := archiveCursor{s: s, graph: graph, entries: entries, from: first}
	// With a keyring, only signed history is archived (and signed).
	chain := NewChainAt(graph, head, WithTrust(s.trust))
	var seg *segment
	var purged uint64
	prog := ArchiveProgress{}
	flush := func() error {
		if seg == nil {
			return nil
		}
		e, err := s.writeArchive(ctx, enc, seg)
		seg = nil
		if err != nil {
			return err
		}
		res.Objects = append(res.Objects, e.ArchiveInfo)
		res.Transactions += e.Transactions
		prog.Transactions, prog.Objects, prog.Bytes = res.Transactions, len(res.Objects), prog.Bytes+e.Size
		if progress != nil {
			progress(prog)
		}
		return nil
	}
	subject := s.Subject(graph)
	err = s.iterate(ctx, []string{subject}, first, bound-1, func(m storedMsg) (bool, error) {
		seq := m.Seq
		if seq >= bound {
			return true, nil
		}
		if m.Subject != subject {
			return false, fmt.Errorf("seq %d: %w: filtered read of %s delivered %s", seq, ErrMalformed, subject, m.Subject)
		}
		purged++
		done := seq+1 >= bound || m.Pending == 0
		if seq <= archivedTo {
			return done, cur.match(ctx, seq, m.Data)
		}
		rec, err := decodeRecord(seq, m.Time, m.Data)
		if err != nil {
			return false, err
		}
		prev := chain.Head()
		if _, err := chain.Check(seq, rec.Tx); err != nil {
			return false, err
		}
		if seg != nil && (seg.entry.Transactions >= s.arc.segTx || len(seg.buf)+len(m.Data) > s.arc.segBytes) {
			if err := flush(); err != nil {
				return false, err
			}
		}
		ts := m.Time.UnixNano()
		if seg == nil {
			seg = &segment{
				entry: archiveEntry{ArchiveInfo: ArchiveInfo{Graph: graph, FromSeq: seq, FromN: prev.N + 1}, prev: prev, fromTime: ts},
				buf:   appendArchiveHeader(make([]byte, 0, min(s.arc.segBytes, 1<<20)+len(m.Data)), graph),
			}
		}
		seg.buf = appendArchiveRecord(seg.buf, seq, ts, m.Data)
		seg.entry.ToSeq, seg.entry.ToN, seg.entry.head, seg.entry.toTime = seq, chain.Head().N, chain.Head(), ts
		seg.entry.Transactions++
		return done, nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = cur.finish(bound)
	}
	if err != nil {
		return res, fmt.Errorf("archive %s before seq %d: %w", graph, bound, err)
	}
	if purged == 0 {
		return res, nil
	}
	pctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	if err := s.stream.Purge(pctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(bound)); err != nil {
		return res, fmt.Errorf("archive %s: purge the stream below seq %d (the archives are written): %w", graph, bound, translate(err))
	}
	res.Purged = purged
	return res, nil
}

// writeArchive compresses and stores seg, then reads it back and checks it;
// an object that does not check out is deleted again.
func (s *Store) writeArchive(ctx context.Context, enc *zstd.Encoder, seg *segment) (archiveEntry, error) {
	e := seg.entry
	e.Name = archiveName(e.Graph, e.FromSeq, e.ToSeq)
	e.Size = int64(len(seg.buf))
	data := enc.EncodeAll(seg.buf, nil)
	e.Stored = int64(len(data))
	o := e.sig()
	o.Digest = wire.SHA256(seg.buf)
	e.md = e.metadata()
	maps.Copy(e.md, objectMeta(s.signer, o))
	pctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	oi, err := s.arc.obj.Put(pctx, jetstream.ObjectMeta{
		Name:        e.Name,
		Description: fmt.Sprintf("Cairn archive of graph %s, seqs %d-%d, events %d-%d", e.Graph, e.FromSeq, e.ToSeq, e.FromN, e.ToN),
		Metadata:    e.md,
	}, bytes.NewReader(data))
	if err != nil {
		return e, fmt.Errorf("write archive %s: %w", e.Name, objectErr(err))
	}
	e.Stored = int64(oi.Size)
	_, raw, err := s.loadArchive(ctx, e)
	// The records were chain-checked before they were written: equal
	// bytes read back need no second check.
	if err == nil && !bytes.Equal(raw, seg.buf) {
		err = fmt.Errorf("archive %s: %w: read back differs from what was written", e.Name, ErrMalformed)
	}
	if err != nil {
		dctx, cancel := withTimeout(context.WithoutCancel(ctx), s.cfg.OpTimeout)
		defer cancel()
		if derr := s.arc.obj.Delete(dctx, e.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete unverified archive %s: %w", e.Name, objectErr(derr)))
		}
		return e, fmt.Errorf("verify archive %s: %w", e.Name, err)
	}
	return e, nil
}

// archiveCursor walks the archives whose transactions are still in the
// stream (a crashed Archive wrote them but did not purge), checking each
// archive once, and compares their transactions with the stream's.
type archiveCursor struct {
	s       *Store
	graph   string
	entries []archiveEntry
	from    uint64 // graph's first sequence in the stream
	i       int    // entries[i] is loaded in recs when loaded
	recs    []archiveRecord
	j       int // next record of recs to match
	loaded  bool
}

// match checks that the archives hold data at seq, the next of graph's
// transactions in the stream.
func (c *archiveCursor) match(ctx context.Context, seq uint64, data []byte) error {
	for {
		if !c.loaded {
			for c.i < len(c.entries) && c.entries[c.i].ToSeq < c.from {
				c.i++ // purged already
			}
			if c.i == len(c.entries) {
				return &ChainError{Graph: c.graph, Seq: seq, Reason: "transaction in the stream is missing from the archives that cover it"}
			}
			e := c.entries[c.i]
			recs, _, err := c.s.loadArchive(ctx, e)
			if err != nil {
				return err
			}
			if err := checkArchive(e, recs, c.s.trust); err != nil {
				return err
			}
			c.recs, c.j, c.loaded = recs, 0, true
			for c.j < len(c.recs) && c.recs[c.j].seq < c.from {
				c.j++ // the part a purge removed already
			}
		}
		if c.j < len(c.recs) {
			e, r := c.entries[c.i], c.recs[c.j]
			switch {
			case r.seq < seq:
				return &ChainError{Graph: c.graph, Seq: r.seq, Reason: "transaction archived in " + e.Name + " is missing from the stream"}
			case r.seq > seq:
				return &ChainError{Graph: c.graph, Seq: seq, Reason: "transaction in the stream is missing from archive " + e.Name}
			case !bytes.Equal(r.data, data):
				return &ChainError{Graph: c.graph, Seq: seq, Reason: "archive " + e.Name + " holds another transaction than the stream"}
			}
			c.j++
			return nil
		}
		c.loaded = false
		c.i++
	}
}

// finish checks that every archived transaction below bound that should
// still be in the stream was found there: one that was not would be a gap
// that the purge hides. Transactions archived at or after bound stay in the
// stream and are not looked at.
func (c *archiveCursor) finish(bound uint64) error {
	if c.loaded {
		if c.j < len(c.recs) && c.recs[c.j].seq < bound {
			return &ChainError{Graph: c.graph, Seq: c.recs[c.j].seq, Reason: "transaction archived in " + c.entries[c.i].Name + " is missing from the stream"}
		}
		c.i++
	}
	for ; c.i < len(c.entries); c.i++ {
		if e := c.entries[c.i]; e.ToSeq >= c.from && e.FromSeq < bound {
			return &ChainError{Graph: c.graph, Seq: max(e.FromSeq, c.from), Reason: "transactions archived in " + e.Name + " are missing from the stream"}
		}
	}
	return nil
}

// firstFrom returns the sequence of graph's first message at or after seq
// that is still in the stream and the chain position of its first event (0
// when it does not tell); 0, 0 when there is none.
func (s *Store) firstFrom(ctx context.Context, graph string, seq uint64) (uint64, uint64, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.getMsg(ctx, max(seq, 1), s.Subject(graph))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		if errors.Is(translate(err), ErrNotFound) {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("first message of %s from seq %d: %w", graph, seq, translate(err))
	}
	n, _ := firstPositionOf(m.Data)
	return m.Sequence, n, nil
}

// firstPositionOf returns the chain position of the first event of the
// transaction encoded in data, without decoding all of it.
func firstPositionOf(data []byte) (uint64, bool) {
	tx := &cairnv1.Transaction{}
	if err := proto.Unmarshal(data, tx); err != nil {
		return 0, false
	}
	return firstPosition(tx)
}

// firstPosition and lastPosition read the chain position of a transaction's
// first and last event from their envelopes.
func firstPosition(tx *cairnv1.Transaction) (uint64, bool) {
	evs := tx.GetEvents()
	if len(evs) == 0 {
		return 0, false
	}
	return envelopePosition(evs[0].GetDagCbor())
}

func lastPosition(tx *cairnv1.Transaction) (uint64, bool) {
	evs := tx.GetEvents()
	if len(evs) == 0 {
		return 0, false
	}
	return envelopePosition(evs[len(evs)-1].GetDagCbor())
}

// envelopePosition reads "n" from an envelope: canonical dag-cbor puts it
// first, right after the map head.
func envelopePosition(b []byte) (uint64, bool) {
	d := cborDecoder{buf: b}
	if m, n, err := d.head(); err != nil || m != 5 || (n != 7 && n != 8) {
		return 0, false
	}
	if k, err := d.text(); err != nil || k != "n" {
		return 0, false
	}
	n, err := d.uint()
	return n, err == nil
}

// readAcross is Read and ReadScan with archives: graph's archived records
// from fromSeq on, then the stream's. It watches chain positions where the
// stream part begins and between stream records, so that transactions that
// a concurrent Archive moved out of the stream during the read are taken
// from the new archive instead of being skipped.
func (s *Store) readAcross(ctx context.Context, graph string, fromSeq, last uint64, subjects []string, only string, fn func(Record) error) error {
	next := max(fromSeq, 1)
	// Graph's first transaction left in the stream. Everything from it on
	// is in the stream; only a read that starts below it may need the
	// archives, and only when it is not the chain's first.
	s0, n0, err := s.firstFrom(ctx, graph, 1)
	if err != nil {
		return err
	}
	if s0 == 0 {
		s0 = last + 1
	}
	if next > s0 {
		s0, n0 = next, 0 // the first record read sets the expected position
	}
	delivered := next - 1 // highest sequence handed to fn (or below fromSeq)
	var expect uint64     // chain position the next record must start at; 0: unknown
	emitArchived := func(below uint64) error {
		es, err := s.listArchives(ctx, graph)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.ToSeq <= delivered || e.FromSeq >= below {
				continue
			}
			recs, _, err := s.loadArchive(ctx, e)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.seq <= delivered || r.seq >= below {
					continue
				}
				rec, err := r.record()
				if err != nil {
					return fmt.Errorf("archive %s: %w", e.Name, err)
				}
				if err := fn(rec); err != nil {
					return err
				}
				delivered = r.seq
				n, _ := lastPosition(rec.Tx)
				expect = n + 1
			}
		}
		return nil
	}
	if next < s0 && n0 > 1 {
		if err := emitArchived(s0); err != nil {
			return err
		}
	}
	if expect == 0 {
		expect = n0
	}
	if s0 > last {
		return nil
	}
	return s.iterate(ctx, subjects, max(next, delivered+1), last, func(m storedMsg) (bool, error) {
		seq := m.Seq
		done := seq >= last || m.Pending == 0
		if (only != "" && m.Subject != only) || seq <= delivered {
			return done, nil
		}
		rec, err := decodeRecord(seq, m.Time, m.Data)
		if err != nil {
			return false, err
		}
		if n, ok := firstPosition(rec.Tx); ok && expect != 0 && n > expect {
			// A gap: a concurrent Archive may have moved it out.
			if err := emitArchived(seq); err != nil {
				return false, err
			}
		}
		if err := fn(rec); err != nil {
			return false, err
		}
		delivered = seq
		if n, ok := lastPosition(rec.Tx); ok {
			expect = n + 1
		} else {
			expect = 0
		}
		return done, nil
	})
}

// getAny returns the transaction at seq from the stream, whatever its
// subject, or from graph's archives.
func (s *Store) getAny(ctx context.Context, graph string, seq uint64) (Record, string, error) {
	if err := checkGraph(graph); err != nil {
		return Record{}, "", fmt.Errorf("get seq %d: %w", seq, err)
	}
	if seq == 0 {
		return Record{}, "", fmt.Errorf("get %s seq 0: %w", graph, ErrNotFound)
	}
	gctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	m, err := s.getMsg(gctx, seq, "")
	cancel()
	if err == nil {
		rec, err := decodeRecord(m.Sequence, m.Time, m.Data)
		return rec, m.Subject, err
	}
	if err = translate(err); !errors.Is(err, ErrNotFound) {
		return Record{}, "", fmt.Errorf("get %s seq %d: %w", graph, seq, err)
	}
	es, lerr := s.listArchives(ctx, graph)
	if lerr != nil {
		return Record{}, "", fmt.Errorf("get %s seq %d: %w", graph, seq, lerr)
	}
	for _, e := range es {
		if seq < e.FromSeq || seq > e.ToSeq {
			continue
		}
		recs, _, err := s.loadArchive(ctx, e)
		if err != nil {
			return Record{}, "", fmt.Errorf("get %s seq %d: %w", graph, seq, err)
		}
		i, found := slices.BinarySearchFunc(recs, seq, func(r archiveRecord, seq uint64) int {
			switch {
			case r.seq < seq:
				return -1
			case r.seq > seq:
				return 1
			}
			return 0
		})
		if !found {
			break
		}
		rec, err := recs[i].record()
		if err != nil {
			return Record{}, "", fmt.Errorf("archive %s: %w", e.Name, err)
		}
		return rec, s.Subject(graph), nil
	}
	return Record{}, "", fmt.Errorf("get %s seq %d: %w: neither in the stream nor archived", graph, seq, err)
}

// CheckHead reports whether the transaction at stream sequence seq belongs
// to graph and ends with the event head (position and CID): a snapshot that
// claims to be folded up to seq is trusted only then. It looks in graph's
// archives when seq is no longer in the stream, and recomputes the last
// event's CID from its stored envelope bytes.
//
// Errors: a *ChainError (ErrChainBroken) saying what differs (another
// graph's transaction, another position, another CID); ErrNotFound when seq
// is in neither stream nor archive; ErrMalformed; ErrInvalidGraph;
// ErrUnavailable; ctx's error.
func (s *Store) CheckHead(ctx context.Context, graph string, seq uint64, head Head) error {
	rec, subject, err := s.getAny(ctx, graph, seq)
	if err != nil {
		return fmt.Errorf("check head: %w", err)
	}
	fail := func(pos uint64, reason, want, got string) error {
		return &ChainError{Graph: graph, Seq: seq, Position: pos, Reason: reason, Want: want, Got: got}
	}
	if subject != s.Subject(graph) || rec.Tx.GetGraphId() != graph {
		return fail(0, "transaction belongs to another graph", graph, fmt.Sprintf("%s (subject %s)", rec.Tx.GetGraphId(), subject))
	}
	evs := rec.Tx.GetEvents()
	if len(evs) == 0 {
		return fail(0, "transaction holds no events", "", "")
	}
	lastEv := evs[len(evs)-1]
	env, err := DecodeEnvelope(lastEv.GetDagCbor())
	if err != nil {
		return &ChainError{Graph: graph, Seq: seq, Reason: "last event's envelope does not decode", Err: err}
	}
	sum := EventCID(lastEv.GetDagCbor())
	if !bytes.Equal(sum, lastEv.GetCid()) {
		return fail(env.N, "stored CID does not match the envelope bytes", cidString(sum), cidString(lastEv.GetCid()))
	}
	if env.N != head.N {
		return fail(env.N, "head position", fmt.Sprint(head.N), fmt.Sprint(env.N))
	}
	if !bytes.Equal(sum, head.CID.Bytes()) {
		return fail(env.N, "head CID", linkString(head.CID), cidString(sum))
	}
	return nil
}

// SeqAtTime returns the highest stream sequence stored at or before t (0
// when none): the state "as of t" is every transaction up to it. It asks the
// server for the first message stored after t; when graph has archives, the
// archived transactions (whose stream times are kept) count too, so a time
// before the first message left in the stream still finds graph's place.
// Other graphs' archived messages are not looked at.
//
// Errors: ErrInvalidGraph; ErrMalformed when an archive does not read back;
// ErrUnavailable; ctx's error.
func (s *Store) SeqAtTime(ctx context.Context, graph string, t time.Time) (uint64, error) {
	if err := checkGraph(graph); err != nil {
		return 0, fmt.Errorf("seq at time: %w", err)
	}
	ictx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	info, err := s.stream.Info(ictx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("seq of %s at %s: stream info: %w", graph, t.Format(time.RFC3339Nano), translate(err))
	}
	ans := info.State.LastSeq
	if info.State.Msgs > 0 && info.State.LastTime.After(t) {
		after, err := s.firstAfter(ctx, t)
		if err != nil {
			return 0, fmt.Errorf("seq of %s at %s: %w", graph, t.Format(time.RFC3339Nano), err)
		}
		if after > 0 {
			ans = after - 1
		}
	}
	// Archived transactions stored after t but below ans: only when graph
	// has an archived prefix.
	if s.arc.obj == nil {
		return ans, nil
	}
	if _, n, err := s.firstFrom(ctx, graph, 1); err != nil || n <= 1 {
		return ans, err
	}
	es, err := s.listArchives(ctx, graph)
	if err != nil {
		return 0, fmt.Errorf("seq of %s at %s: %w", graph, t.Format(time.RFC3339Nano), err)
	}
	tn := t.UnixNano()
	for _, e := range es {
		if e.FromSeq > ans {
			break
		}
		if e.toTime <= tn {
			continue
		}
		recs, _, err := s.loadArchive(ctx, e)
		if err != nil {
			return 0, fmt.Errorf("seq of %s at %s: %w", graph, t.Format(time.RFC3339Nano), err)
		}
		for _, r := range recs {
			if r.ts > tn {
				if r.seq <= ans {
					ans = r.seq - 1
				}
				break
			}
		}
		break
	}
	return ans, nil
}

// firstAfter returns the sequence of the first message stored after t;
// call it only when the stream holds one.
func (s *Store) firstAfter(ctx context.Context, t time.Time) (uint64, error) {
	start := t.Add(time.Nanosecond)
	cctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	cons, err := s.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return 0, fmt.Errorf("consumer from %s: %w", start.Format(time.RFC3339Nano), translate(err))
	}
	defer func() {
		// The server would drop it after InactiveThreshold; do not wait.
		if ci := cons.CachedInfo(); ci != nil {
			dctx, cancel := withTimeout(context.WithoutCancel(ctx), s.cfg.OpTimeout)
			defer cancel()
			_ = s.stream.DeleteConsumer(dctx, ci.Name)
		}
	}()
	m, err := cons.Next(jetstream.FetchMaxWait(min(s.cfg.OpTimeout, 5*time.Second)))
	if err != nil {
		// A time-out is an error too: the caller knows a message after t
		// exists, and answering "none" would give the head instead.
		return 0, fmt.Errorf("first message after %s: %w", t.Format(time.RFC3339Nano), translate(err))
	}
	md, err := m.Metadata()
	if err != nil {
		return 0, fmt.Errorf("first message after %s: %w: %v", t.Format(time.RFC3339Nano), ErrMalformed, err)
	}
	return md.Sequence.Stream, nil
}

// errFound stops a scan that found what it looked for.
var errFound = errors.New("found")

// FindEvent returns the stream sequence of the transaction holding graph's
// event c and the event's chain position, scanning graph's whole history
// (archives, then the stream).
//
// Errors: ErrNotFound when the graph has no such event; ErrMalformed when
// the matching event's envelope does not decode or an archive does not read
// back; ErrInvalidGraph; ErrUnavailable; ctx's error.
func (s *Store) FindEvent(ctx context.Context, graph string, c cid.Cid) (seq, position uint64, err error) {
	if !c.Defined() {
		return 0, 0, fmt.Errorf("find event in %s: %w: undefined CID", graph, ErrNotFound)
	}
	want := c.Bytes()
	_, err = s.Read(ctx, graph, 1, func(r Record) error {
		for _, ev := range r.Tx.GetEvents() {
			if bytes.Equal(ev.GetCid(), want) {
				env, err := DecodeEnvelope(ev.GetDagCbor())
				if err != nil {
					return fmt.Errorf("seq %d: event %s: %w", r.Seq, c, err)
				}
				seq, position = r.Seq, env.N
				return errFound
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return seq, position, nil
	case err != nil:
		return 0, 0, fmt.Errorf("find event %s in %s: %w", c, graph, err)
	}
	return 0, 0, fmt.Errorf("find event %s in %s: %w", c, graph, ErrNotFound)
}
