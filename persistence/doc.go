// Package persistence is Cairn's event store on NATS JetStream, its CID
// codec, and the embedded NATS server.
//
// # Stream and subjects
//
// All graphs share one stream, "event-store" (file storage, replicas
// configurable, default 1). Graph g's transactions are the messages on
// subject "cairn.events.<g>"; graph ids are restricted to letters, digits,
// '-' and '_' so they are always one subject token. Each message is one
// protobuf cairn.v1.Transaction holding every event of one or more commands.
//
// Append publishes with the headers Nats-Expected-Last-Subject-Sequence
// (optimistic concurrency: a stale writer gets ErrConflict) and Nats-Msg-Id =
// transaction id (a publish retry within the duplicate window is stored
// once). It publishes on core NATS with a reply subject of its own (one
// wildcard reply subscription per Store, made on the first append) and reads
// the server's PubAck by hand, falling back to encoding/json for anything
// but the server's usual {"stream":…,"seq":N} forms (an API error among
// them); it waits for the acknowledgement until ctx ends, else for
// OpTimeout. AppendWithin bounds the wait by a duration instead, with a
// coarse time-out that concurrent appends share (internal/deadline): no
// context or timer per append. AppendAsync does not wait at all: its
// callback gets the result, straight from the reply subscription for a
// plain acknowledgement (a graph grain appends so, with no goroutine
// parked per append). Read replays one graph, ReadAll the whole
// stream, Get one message.
// A graph's history can be moved into archive objects (see Archives below).
//
// # Limits
//
// One transaction is one message, so it can be no larger than the stream
// takes: MaxTransactionBytes is the smallest of the server's max_payload
// (as the connection was told it), the stream's max message size and
// FileStoreMaxRecord (32 MiB: JetStream's file store refuses a larger
// message whatever max_payload allows), less HeaderRoom for the subject
// and headers. Append refuses a larger transaction before sending anything,
// with a *TooLargeError wrapping ErrTooLarge; a writer checks proto.Size
// of its transaction against MaxTransactionBytes first. The embedded
// server's max_payload is DefaultMaxPayload (32 MiB) and its max_pending
// four times that; removing a node with 100,000 edges is a transaction of
// about 21 MB. On a server of one's own (serve --nats URL) the limit follows
// its max_payload, 1 MiB by default: set max_payload to 32 MiB and
// max_pending to at least twice that to take the same transactions.
// Readers pull max_payload + 64 KiB at a time (at least 16 MiB), so that any
// message fits in one pull.
//
// # Event envelopes and CIDs
//
// Every event is wrapped in a dag-cbor envelope, and the event's CID is
// CIDv1(dag-cbor 0x71, sha2-256) of exactly the envelope's bytes, which the
// transaction stores beside the CID. The envelope is a map with these keys,
// in canonical dag-cbor order (shorter keys first, then bytewise):
//
//	n     int    position of the event in the graph's chain, from 1
//	v     int    envelope version, 1
//	ts    int    transaction timestamp, Unix nanoseconds
//	tx    string transaction id
//	body  bytes  the event's protobuf encoding (cairn.v1.Event, deterministic)
//	prev  link   CID of the previous event (tag 42); absent when n = 1
//	type  string event type: GraphCreated, NodeAdded, NodeComponentsChanged,
//	             NodeRemoved, EdgeAdded, EdgeRemoved or GraphDeleted
//	graph string graph id
//
// So any IPLD tool can verify a chain: decode each event's dag_cbor bytes as
// dag-cbor, check that hashing them gives the stored CID, and follow prev back
// to the event at n = 1. go-ipld-prime is the reference codec; the encoder
// here is a faster hand-written one that tests prove byte-identical.
//
// Verify (and Chain, for a stream of transactions) recomputes every CID,
// checks every prev link and position, and returns the first break as a
// *ChainError wrapping ErrChainBroken.
//
// # Signatures
//
// A Signer (an ed25519 nkey) signs each transaction once, after Seal: its
// Signature and KeyId fields hold an ed25519 signature over a short
// documented byte string (TransactionSigningBytes: domain tag, graph, tx
// id, head CID, digest of the command records), which no stream sequence
// enters. A Chain given a Keyring (NewChain(g, WithTrust(k))) refuses a
// transaction that is unsigned, signed by a key the keyring does not hold,
// or whose signature does not hold, as a *ChainError whose Reason starts
// with "signature" and which wraps ErrSignature; without one it checks no
// signatures. Snapshots (SnapshotConfig.Signer, Trust) and archives
// (WithSigning) carry the SHA-256 of their uncompressed payload and a
// signature over it and their kind, graph, seq and head
// (ObjectSigningBytes) in their metadata; the digest is checked on every
// load, the signature when a keyring is given. See sign.go for the byte
// layouts, which ipld_test.go checks with go-ipld-prime and crypto/ed25519.
//
// # Archives
//
// A Store opened WithObjects keeps archives in the Object Store bucket it is
// given (the snapshot bucket, "object-store"). Archive(ctx, g, before, nil)
// moves graph g's transactions with a stream sequence below before (never
// its last one, which optimistic concurrency needs) into zstd-compressed
// objects named "archive/<g>/<from seq, 20 digits>-<to seq, 20 digits>",
// reads each one back and checks it (digest, format, chain from the
// previous archive's head, count), and only then purges them from the
// stream with a subject-filtered purge below the bound. Appends that arrive
// meanwhile get higher sequences and are never touched; a crashed Archive
// is finished by the next one, which compares the archives still in the
// stream with the stream instead of writing them again.
//
// An archive object's payload is, before compression: "CAIRNARC", the
// format version (uvarint, ArchiveFormat), the graph id (uvarint length,
// bytes), then per transaction its stream sequence (uvarint), stream time
// (varint Unix nanoseconds) and protobuf bytes exactly as the stream held
// them (uvarint length, bytes). Its Object Store metadata repeats graph,
// format, first and last sequence, chain position, time and CID, count and
// uncompressed size, and the payload's SHA-256 with its signature.
//
// Read, ReadScan and so Verify and FindEvent read across archive and
// stream; CheckHead finds an archived transaction by sequence; SeqAtTime
// counts archived transactions' times. ReadAll, Follow and Get read the
// stream only; a follower that finds a graph's first transaction in the
// stream past chain position 1 reads the archived prefix with Read.
// FollowGraph follows one graph across archive and stream and then live,
// checking each transaction's chain (and signature, with WithSigning's
// trust) before its callback sees it: the render actor's reader.
// FollowRaw is Follow without decoding: a follower that skips most of the
// stream (a cluster member's projections) decodes only what it keeps
// (Followed.Decode) and counts a message's events without decoding it
// (Followed.Events).
//
// AppendWithin takes a Sealed, the transaction's events as the writer
// sealed them: the same Store's followers then get the transaction
// appended (Followed.Sealed) instead of decoding it, when the message they
// read with its transaction id holds the bytes that were published (a
// seeded hash and the length compared), and check it with CheckSealed.
// Each append is handed to one follower only, the first to read it: a
// follower with no use for it (the engine's linker) follows with
// FollowStored, which always gets the bytes and takes none.
//
// Readers and followers read the stream through an ephemeral consumer
// that they pull from themselves on a plain subscription, as nats.go's
// ordered consumer would but without its per-message timer and metadata:
// a gap in the consumer's sequence, two missed heartbeats or a consumer
// that is lost make a new one from the sequence after the last delivered.
//
// # Backup
//
// BackupStreams names the streams an engine keeps, in the order a backup
// takes them (the object store, its index, the event stream last).
// SnapshotStream copies one stream online through JetStream's stream
// snapshot API (an s2-compressed tar, acknowledged chunk by chunk) and
// returns the config and state the server gave; RestoreStream creates the
// stream from it elsewhere, refusing one that exists (ErrExists). cairn
// backup and cairn restore are built on them.
//
//	var buf bytes.Buffer
//	snap, _ := persistence.SnapshotStream(ctx, nc, "event-store", &buf, nil)
//	state, err := persistence.RestoreStream(ctx, other, "event-store", snap, &buf, nil)
//
// # Embedded server
//
// StartServer runs nats-server with JetStream in a data directory, listening
// on 127.0.0.1:4222 by default so other processes and the nats CLI can
// connect, or on no port at all (ListenNone), with a max_payload of
// DefaultMaxPayload (ServerConfig.MaxPayload). Connect opens an in-process
// connection to it.
//
//	srv, _ := persistence.StartServer(persistence.ServerConfig{DataDir: dir})
//	nc, _ := srv.Connect()
//	js, _ := jetstream.New(nc)
//	store, _ := persistence.OpenStore(ctx, js, persistence.DefaultStoreConfig())
//	res, err := store.Verify(ctx, "my-graph")
//
// With ServerConfig.Cluster (a route listen address and the other nodes'
// routes; mutual TLS, RouteTLS, beyond loopback) the server is one node of
// a NATS cluster, and StoreConfig.Replicas and SnapshotConfig.Replicas may
// be 3 or 5. More replicas than a server that is not clustered can hold
// are refused with ErrNotClustered.
package persistence
