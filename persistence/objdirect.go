package persistence

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readObjectDirect writes object oi's chunks to w as it reads them from the
// bucket's stream by batched direct gets, which any replica answers, and
// checks them against oi's size and digest at the end (an error then: the
// reader must not trust what it got). nats.go reads an object through an ordered
// consumer, and making a consumer takes the JetStream meta leader: after a
// node that led it was killed, a read waited for the whole election (a
// read model moving to another member waited 5 to 30 s in bench
// failover). A replica that has not all the chunks yet, or no answer, is
// an error: the caller reads through the Object Store instead.
func readObjectDirect(ctx context.Context, nc *nats.Conn, stream, bucket string, oi *jetstream.ObjectInfo, w io.Writer) error {
	subject := "$O." + bucket + ".C." + oi.NUID
	api := "$JS.API.DIRECT.GET." + stream
	h := sha256.New()
	var size uint64
	got, next := uint32(0), uint64(1)
	for first := true; first || got < oi.Chunks; first = false {
		// One more than the object has: a chunk past the last (appended
		// behind the Object Store's back) must fail the read, as it fails
		// the Object Store's digest check.
		req, _ := json.Marshal(map[string]any{"seq": next, "next_by_subj": subject, "batch": min(oi.Chunks-got+1, 1024),
			"max_bytes": pullBytes(nc.MaxPayload())})
		sub, err := nc.SubscribeSync(nc.NewRespInbox())
		if err != nil {
			return err
		}
		if err := nc.PublishRequest(api, sub.Subject, req); err != nil {
			_ = sub.Unsubscribe()
			return err
		}
		progressed := false
		for {
			wait := leaderTry
			if dl, ok := ctx.Deadline(); ok {
				wait = min(wait, time.Until(dl))
			}
			m, err := sub.NextMsg(max(wait, time.Millisecond))
			if err != nil {
				_ = sub.Unsubscribe()
				return fmt.Errorf("direct get of %s: %w", subject, err)
			}
			if st := m.Header.Get("Status"); st != "" || m.Header.Get("Nats-Sequence") == "" {
				if st != "204" && st != "404" {
					_ = sub.Unsubscribe()
					return fmt.Errorf("direct get of %s: status %s %s", subject, st, m.Header.Get("Description"))
				}
				break // the batch ended
			}
			seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil || seq < next || m.Header.Get("Nats-Subject") != subject {
				_ = sub.Unsubscribe()
				return fmt.Errorf("direct get of %s: an answer out of place (seq %q, subject %q)", subject, m.Header.Get("Nats-Sequence"), m.Header.Get("Nats-Subject"))
			}
			if got == oi.Chunks {
				_ = sub.Unsubscribe()
				return fmt.Errorf("direct get of %s: more chunks than the object's %d", subject, oi.Chunks)
			}
			h.Write(m.Data)
			size += uint64(len(m.Data))
			if _, err := w.Write(m.Data); err != nil {
				_ = sub.Unsubscribe()
				return err
			}
			got, next, progressed = got+1, seq+1, true
		}
		_ = sub.Unsubscribe()
		if !progressed && got < oi.Chunks {
			return fmt.Errorf("direct get of %s: the replica asked holds %d of %d chunks", subject, got, oi.Chunks)
		}
	}
	if size != oi.Size {
		return fmt.Errorf("direct get of %s: %d bytes, the object has %d", subject, size, oi.Size)
	}
	if want := "SHA-256=" + base64.URLEncoding.EncodeToString(h.Sum(nil)); oi.Digest != want {
		return errors.New("direct get of " + subject + ": digest mismatch")
	}
	return nil
}
