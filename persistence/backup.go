package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
)

// BackupStreams returns the JetStream streams an engine with store's and
// snaps' config keeps, in the order a backup must take them: the
// object-store bucket's stream ("OBJ_object-store"), its snapshot index's
// ("KV_object-store-index") and the event stream ("event-store") last.
//
// A snapshot or archive object names stream positions; a stream newer than
// its objects is fine (an activation replays the tail), the reverse is not.
// The index is taken after the objects because a write adds its index entry
// before it stores the object: every object the backup holds is then named
// by the index the backup holds, unless it was deleted meanwhile (an
// entry whose object is gone is skipped, see Snapshots).
//
// Cluster membership buckets are not listed: a restored engine joins
// afresh.
func BackupStreams(store StoreConfig, snaps SnapshotConfig) []string {
	return []string{"OBJ_" + snaps.Bucket, "KV_" + SnapshotIndexBucket(snaps.Bucket), store.Stream}
}

// StreamSnapshot is what the server says of a stream snapshot when it
// starts one: the stream's config and its state then, both as the server
// wrote them (RestoreStream sends them back as they are), and the state's
// figures.
type StreamSnapshot struct {
	Config json.RawMessage
	State  json.RawMessage
	StreamState
}

// StreamState is a stream's size and sequence range.
type StreamState struct {
	Messages   uint64 `json:"messages"`
	Bytes      uint64 `json:"bytes"`
	FirstSeq   uint64 `json:"first_seq"`
	LastSeq    uint64 `json:"last_seq"`
	NumDeleted int    `json:"num_deleted,omitempty"`
}

// jsAPIError is a JetStream API error reply.
type jsAPIError struct {
	Code        int    `json:"code"`
	ErrCode     uint16 `json:"err_code"`
	Description string `json:"description"`
}

// JetStream API error codes Snapshot and Restore translate.
const (
	jsErrStreamNotFound      = 10059
	jsErrStreamNameExist     = 10058
	jsErrStreamExistsRestore = 10130
)

func (e *jsAPIError) err(stream string) error {
	err := fmt.Errorf("stream %s: %s (code %d, err_code %d)", stream, e.Description, e.Code, e.ErrCode)
	switch e.ErrCode {
	case jsErrStreamNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case jsErrStreamNameExist, jsErrStreamExistsRestore:
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	if e.Code == 503 {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// streamSnapshotChunk is the chunk size SnapshotStream asks for (the server's
// largest); the server keeps up to streamSnapshotWindow bytes unacknowledged.
const (
	streamSnapshotChunk  = 1 << 20
	streamSnapshotWindow = 16 << 20
)

// SnapshotStream asks the server for a snapshot of stream (JetStream's
// $JS.API.STREAM.SNAPSHOT: an s2-compressed tar of the stream's files, its
// consumers left out) and copies it to w, acknowledging each chunk so that
// the server sends on (flow control). The stream stays online: messages
// stored meanwhile may or may not be in the snapshot, whose StreamState is
// the one at its start. progress, when not nil, is called with the bytes
// written so far after each chunk. The chunks arrive on an inbox of nc's.
//
// Errors: ErrNotFound when there is no such stream; ErrUnavailable when
// the server does not answer; the server's reason when it stops the
// snapshot (a 408 when the acknowledgements stopped coming, a 500 on a
// store error); w's error.
func SnapshotStream(ctx context.Context, nc *nats.Conn, stream string, w io.Writer, progress func(int64)) (*StreamSnapshot, error) {
	inbox := nc.NewInbox()
	// The server waits for flow-control acks; a buffer of a window's worth
	// of chunks never drops one.
	msgs := make(chan *nats.Msg, streamSnapshotWindow/streamSnapshotChunk+4)
	sub, err := nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: subscribe: %w", stream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, err := json.Marshal(map[string]any{
		"deliver_subject": inbox, "no_consumers": true,
		"chunk_size": streamSnapshotChunk, "window_size": streamSnapshotWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", stream, err)
	}
	rep, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.SNAPSHOT."+stream, req)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w: %w", stream, ErrUnavailable, err)
	}
	var resp struct {
		Error  *jsAPIError     `json:"error"`
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(rep.Data, &resp); err != nil {
		return nil, fmt.Errorf("snapshot %s: the server's answer is not JSON: %w", stream, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("snapshot: %w", resp.Error.err(stream))
	}
	snap := &StreamSnapshot{Config: resp.Config, State: resp.State}
	if err := json.Unmarshal(resp.State, &snap.StreamState); err != nil {
		return nil, fmt.Errorf("snapshot %s: the server's state: %w", stream, err)
	}
	var total int64
	// The server gives up after 5 s without an ack; so does the reader
	// without a chunk, a little later.
	idle := time.NewTimer(10 * time.Second)
	defer idle.Stop()
	for {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return nil, fmt.Errorf("snapshot %s: after %d bytes: %w", stream, total, ctx.Err())
		case <-idle.C:
			return nil, fmt.Errorf("snapshot %s: %w: no chunk for 10s after %d bytes", stream, ErrUnavailable, total)
		}
		idle.Reset(10 * time.Second)
		if len(m.Data) == 0 {
			// The end: no status or 204 is done, anything else the reason
			// the server stopped.
			if st := m.Header.Get("Status"); st != "" && st != "204" {
				return nil, fmt.Errorf("snapshot %s: the server stopped after %d bytes: %s %s", stream, total, st, m.Header.Get("Description"))
			}
			return snap, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return nil, fmt.Errorf("snapshot %s: write: %w", stream, err)
		}
		total += int64(len(m.Data))
		if progress != nil {
			progress(total)
		}
		if m.Reply != "" {
			if err := nc.Publish(m.Reply, nil); err != nil {
				return nil, fmt.Errorf("snapshot %s: acknowledge a chunk: %w", stream, err)
			}
		}
	}
}

// restoreChunk is the size of the chunks RestoreStream sends: at most a
// NATS server's default max_payload (1 MiB), headers aside.
const restoreChunk = 512 << 10

// RestoreStream creates stream from a snapshot read from r (what
// SnapshotStream wrote), with the config and state SnapshotStream
// returned, through JetStream's $JS.API.STREAM.RESTORE, and returns the
// restored stream's state. progress, when not nil, is called with the
// bytes sent so far after each chunk.
//
// Errors: ErrExists when the stream exists already (nothing is changed);
// ErrUnavailable when the server does not answer; the server's reason
// when it refuses the config or the snapshot; r's error.
func RestoreStream(ctx context.Context, nc *nats.Conn, stream string, snap *StreamSnapshot, r io.Reader, progress func(int64)) (StreamState, error) {
	req, err := json.Marshal(map[string]json.RawMessage{"config": snap.Config, "state": snap.State})
	if err != nil {
		return StreamState{}, fmt.Errorf("restore %s: %w", stream, err)
	}
	rep, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.RESTORE."+stream, req)
	if err != nil {
		return StreamState{}, fmt.Errorf("restore %s: %w: %w", stream, ErrUnavailable, err)
	}
	var resp struct {
		Error          *jsAPIError `json:"error"`
		DeliverSubject string      `json:"deliver_subject"`
	}
	if err := json.Unmarshal(rep.Data, &resp); err != nil {
		return StreamState{}, fmt.Errorf("restore %s: the server's answer is not JSON: %w", stream, err)
	}
	if resp.Error != nil {
		return StreamState{}, fmt.Errorf("restore: %w", resp.Error.err(stream))
	}
	if resp.DeliverSubject == "" {
		return StreamState{}, fmt.Errorf("restore %s: the server named no subject to send the snapshot to", stream)
	}
	// Each chunk is a request: the server answers once it has taken it,
	// with nothing, or with the error that stopped the restore.
	buf := make([]byte, restoreChunk)
	var total int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			ack, err := nc.RequestWithContext(ctx, resp.DeliverSubject, buf[:n])
			if err != nil {
				return StreamState{}, fmt.Errorf("restore %s: send a chunk after %d bytes: %w: %w", stream, total, ErrUnavailable, err)
			}
			if len(ack.Data) > 0 {
				if _, err := restoreResult(stream, ack.Data); err != nil {
					return StreamState{}, err
				}
			}
			total += int64(n)
			if progress != nil {
				progress(total)
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			// The server gives up on a restore that stalls for 5 s and
			// removes what it made of it.
			return StreamState{}, fmt.Errorf("restore %s: read the snapshot: %w", stream, rerr)
		}
	}
	// An empty chunk ends it; the answer is the restored stream's info.
	done, err := nc.RequestWithContext(ctx, resp.DeliverSubject, nil)
	if err != nil {
		return StreamState{}, fmt.Errorf("restore %s: finish: %w: %w", stream, ErrUnavailable, err)
	}
	return restoreResult(stream, done.Data)
}

// restoreResult decodes a restore's final answer (a stream create
// response) or the error answer to a chunk.
func restoreResult(stream string, data []byte) (StreamState, error) {
	var resp struct {
		Error *jsAPIError `json:"error"`
		State StreamState `json:"state"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return StreamState{}, fmt.Errorf("restore %s: the server's answer is not JSON: %w", stream, err)
	}
	if resp.Error != nil {
		return StreamState{}, fmt.Errorf("restore: %w", resp.Error.err(stream))
	}
	return resp.State, nil
}
