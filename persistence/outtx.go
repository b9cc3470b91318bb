package persistence

import (
	"strconv"
	"sync"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// outTx is what one append sends: the marshalled transaction, the message,
// its headers and the text of its subject, expected sequence and reply
// subject. Store.appendTx takes one from a pool and gives it back when it
// returns: nats.go copies a message into the connection's buffer before
// PublishMsg returns and keeps no reference to it, so nothing here is
// read after the append (the strings built on these buffers never leave
// appendTx). That saves about eight allocations per append.
type outTx struct {
	data  []byte // the marshalled transaction
	msg   nats.Msg
	hdr   nats.Header
	vals  [2]string // the header values, behind hdr's one-element slices
	subj  []byte
	seq   [20]byte // the expected sequence in decimal
	reply []byte
}

// maxPooledTx is the largest marshal buffer an append keeps for the next.
const maxPooledTx = 64 << 10

// subject returns prefix.graph, built on o's buffer.
func (o *outTx) subject(prefix, graph string) string {
	o.subj = append(append(append(o.subj[:0], prefix...), '.'), graph...)
	return unsafe.String(unsafe.SliceData(o.subj), len(o.subj))
}

// message returns o's message of data to subject, with the headers
// persistence.Store.Append sends: the expected last subject sequence and
// the message id (the transaction id, for the stream's duplicate window).
func (o *outTx) message(subject string, data []byte, expectedSeq uint64, txID string) *nats.Msg {
	seq := strconv.AppendUint(o.seq[:0], expectedSeq, 10)
	o.vals = [2]string{unsafe.String(unsafe.SliceData(seq), len(seq)), txID}
	if o.hdr == nil {
		o.hdr = make(nats.Header, 3)
	}
	// Both header names are in canonical form already: skip Header.Set.
	o.hdr[jetstream.ExpectedLastSubjSeqHeader] = o.vals[0:1:1]
	o.hdr[jetstream.MsgIDHeader] = o.vals[1:2:2]
	o.msg = nats.Msg{Subject: subject, Data: data, Header: o.hdr}
	return &o.msg
}

// replyTo sets o's message's reply subject to prefix followed by id in
// decimal, built on o's buffer.
func (o *outTx) replyTo(prefix string, id uint64) {
	o.reply = strconv.AppendUint(append(o.reply[:0], prefix...), id, 10)
	o.msg.Reply = unsafe.String(unsafe.SliceData(o.reply), len(o.reply))
}

// release clears what o holds of the append (a traced one added a
// header) and puts it back in pool, unless its marshal buffer grew past
// maxPooledTx.
func (o *outTx) release(pool *sync.Pool) {
	if cap(o.data) > maxPooledTx {
		return
	}
	clear(o.hdr)
	o.vals = [2]string{}
	o.msg = nats.Msg{}
	pool.Put(o)
}
