package api

// KeysSubject answers any request with the engine's public signing keys,
// as JSON (Keys): `cairn keys fetch`, or nats req with any body. It is
// served by the "cairn" micro service's "keys" endpoint.
const KeysSubject = "cairn.keys"

// Keys is what KeysSubject answers: the public keys (nkey strings) of the
// engine's signed history. A client that trusts the engine's answer can
// check signatures with them; one that does not compares them with keys it
// got out of band (`cairn verify --trust FILE`).
type Keys struct {
	// SigningKey is the key this member signs new transactions, snapshots
	// and archives with; "" when it does not sign.
	SigningKey string `json:"signing_key,omitempty"`
	// Trusted is every key the member accepts signatures from, sorted: the
	// signing key and the earlier keys kept after a rotation.
	Trusted []string `json:"trusted"`
	// UnsignedThrough, when not 0, is the stream sequence up to which the
	// member accepts unsigned transactions (history from before signing).
	UnsignedThrough uint64 `json:"unsigned_through,omitempty"`
}
