package persistence

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/nats-io/nkeys"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Signed history. The engine signs each transaction, snapshot and archive
// object with an ed25519 key; readers given a Keyring (the trusted public
// keys) refuse what is unsigned, signed by a key they do not trust, or
// whose signature does not hold. A key is an nkey (github.com/nats-io/nkeys):
// the seed file holds "S…", and the key id is the public key string ("N…"
// for the server keys that NewSigningKey makes; any nkey type but a curve
// key works).
//
// What is signed is a short byte string, documented here so that anyone
// can check a signature with a generic IPLD library and ed25519 (see
// persistence/ipld_test.go). uvarint is Go's encoding/binary.AppendUvarint
// (LEB128); a string is its uvarint length then its bytes.
//
// A transaction (TransactionSigningBytes):
//
//	"cairn/tx/v1\n"  domain tag (12 bytes)
//	string  graph id
//	string  tx id
//	string  the binary CID of the transaction's last event (its head: the
//	        prev links cover every event before it, and each envelope
//	        repeats the graph, the tx id and the timestamp)
//	32 bytes  SHA-256 of the command records (not covered by the events),
//	        each in order as: string command_id, string correlation_id,
//	        string causation_id, string issuer, uvarint event_count
//
// No stream sequence is signed: a transaction keeps its signature when it
// is archived or copied to another stream.
//
// A snapshot or an archive object (ObjectSigningBytes):
//
//	"cairn/object/v1\n"  domain tag (16 bytes)
//	string  kind ("aggregate", "readmodel", "manifest" or "archive")
//	string  graph id (a manifest's series)
//	uvarint seq (an archive: its last transaction's)
//	uvarint chain position of the head event
//	string  the head event's binary CID (empty when there is none)
//	32 bytes  SHA-256 of the uncompressed payload
//
// The object's metadata holds the payload's SHA-256 (hex, MetaPayloadSHA256),
// the key id (MetaSigKey) and the signature (base64url without padding,
// MetaSig). The digest is checked on every load, with or without a
// Keyring; the signature when a Keyring is given.

// Domain tags of the signed byte strings.
const (
	TxSigDomain     = "cairn/tx/v1\n"
	ObjectSigDomain = "cairn/object/v1\n"
)

// Object metadata keys of a snapshot's or an archive's integrity.
const (
	MetaPayloadSHA256 = "payload-sha256"
	MetaSigKey        = "sig-key"
	MetaSig           = "sig"
)

// Signature errors. A transaction that fails is a *ChainError wrapping
// ErrChainBroken and ErrSignature; a snapshot or archive wraps ErrSignature
// (and ErrMalformed for a payload that does not match its digest).
var (
	// ErrSignature: a signature is missing, made by a key not in the
	// Keyring, or does not hold.
	ErrSignature = errors.New("signature not trusted")
	// ErrKey: a key or key file does not parse.
	ErrKey = errors.New("invalid key")
)

// Signer signs with one ed25519 key. It is safe for concurrent use.
type Signer struct {
	id   string
	priv ed25519.PrivateKey
	// signed, when set, remembers what SignTransaction signs (Remembering).
	signed *SignedSet
}

// NewSigningKey returns a fresh nkey seed (a server key, "SN…").
func NewSigningKey() ([]byte, error) {
	kp, err := nkeys.CreateServer()
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	return kp.Seed()
}

// NewSigner returns the signer of an nkey seed ("S…", surrounding space
// ignored).
//
// Errors: ErrKey.
func NewSigner(seed []byte) (*Signer, error) {
	prefix, raw, err := nkeys.DecodeSeed(bytes.TrimSpace(seed))
	if err != nil {
		return nil, fmt.Errorf("%w: signing key seed: %v", ErrKey, err)
	}
	if prefix == nkeys.PrefixByteCurve {
		return nil, fmt.Errorf("%w: a curve (x25519) seed cannot sign", ErrKey)
	}
	kp, err := nkeys.FromRawSeed(prefix, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: signing key seed: %v", ErrKey, err)
	}
	id, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %v", ErrKey, err)
	}
	return &Signer{id: id, priv: ed25519.NewKeyFromSeed(raw)}, nil
}

// LoadSigner reads a seed file.
//
// Errors: ErrKey, or the file's error.
func LoadSigner(path string) (*Signer, error) {
	seed, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	s, err := NewSigner(seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// KeyID returns the signer's public key string.
func (s *Signer) KeyID() string { return s.id }

// SignTransaction signs tx (its events sealed, its commands set) and sets
// its signature and key id.
func (s *Signer) SignTransaction(tx *cairnv1.Transaction) error {
	msg, err := TransactionSigningBytes(tx)
	if err != nil {
		return err
	}
	tx.Signature, tx.KeyId = ed25519.Sign(s.priv, msg), s.id
	if s.signed != nil {
		s.signed.add(signedDigest(msg, tx.Signature))
	}
	return nil
}

// signObject returns the metadata entries that sign an object.
func (s *Signer) signObject(o ObjectSig) map[string]string {
	return map[string]string{
		MetaSigKey: s.id,
		MetaSig:    base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.priv, ObjectSigningBytes(o))),
	}
}

// TransactionSigningBytes returns the bytes a transaction's signature is
// over (see the package comment above Signer).
//
// Errors: a transaction without events.
func TransactionSigningBytes(tx *cairnv1.Transaction) ([]byte, error) {
	evs := tx.GetEvents()
	if len(evs) == 0 {
		return nil, fmt.Errorf("sign transaction %s: it holds no events", tx.GetTxId())
	}
	head := evs[len(evs)-1].GetCid()
	h := sha256.New()
	var buf []byte
	for _, cr := range tx.GetCommands() {
		buf = appendString(buf[:0], cr.GetCommandId())
		buf = appendString(buf, cr.GetCorrelationId())
		buf = appendString(buf, cr.GetCausationId())
		buf = appendString(buf, cr.GetIssuer())
		buf = binary.AppendUvarint(buf, uint64(cr.GetEventCount()))
		h.Write(buf)
	}
	g, id := tx.GetGraphId(), tx.GetTxId()
	out := make([]byte, 0, len(TxSigDomain)+len(g)+len(id)+len(head)+3*binary.MaxVarintLen16+sha256.Size)
	out = append(out, TxSigDomain...)
	out = appendString(out, g)
	out = appendString(out, id)
	out = appendString(out, string(head))
	return h.Sum(out), nil
}

// ObjectSig is what an object's signature covers besides its payload.
type ObjectSig struct {
	Kind     string // snapshot kind, or "archive"
	Graph    string
	Seq      uint64
	Position uint64
	Head     cid.Cid
	Digest   [sha256.Size]byte // SHA-256 of the uncompressed payload
}

// ObjectSigningBytes returns the bytes an object's signature is over (see
// the package comment above Signer).
func ObjectSigningBytes(o ObjectSig) []byte {
	var head []byte
	if o.Head.Defined() {
		head = o.Head.Bytes()
	}
	out := make([]byte, 0, len(ObjectSigDomain)+len(o.Kind)+len(o.Graph)+len(head)+5*binary.MaxVarintLen64+sha256.Size)
	out = append(out, ObjectSigDomain...)
	out = appendString(out, o.Kind)
	out = appendString(out, o.Graph)
	out = binary.AppendUvarint(out, o.Seq)
	out = binary.AppendUvarint(out, o.Position)
	out = appendString(out, string(head))
	return append(out, o.Digest[:]...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Keyring is a set of trusted public keys. A nil *Keyring trusts nothing
// and checks nothing: readers given none do not check signatures. It is
// read-only once in use.
type Keyring struct {
	keys map[string]ed25519.PublicKey
	// unsignedThrough: transactions at stream sequences up to it may be
	// unsigned (history written before signing was turned on).
	unsignedThrough uint64
	// signed, when set, vouches for transactions this process signed
	// (Vouching).
	signed *SignedSet
}

// NewKeyring returns a keyring that trusts the public keys ids.
//
// Errors: ErrKey.
func NewKeyring(ids ...string) (*Keyring, error) {
	k := &Keyring{keys: make(map[string]ed25519.PublicKey, len(ids))}
	for _, id := range ids {
		if err := k.Add(id); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// ReadKeyring reads trusted public keys, one per line: the first word of
// each line; blank lines and everything after a '#' are ignored.
//
// Errors: ErrKey naming the line, or the reader's error.
func ReadKeyring(r io.Reader) (*Keyring, error) {
	k, _ := NewKeyring()
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := k.Add(f[0]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	return k, nil
}

// LoadKeyring reads a file of trusted public keys (ReadKeyring).
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read trusted keys: %w", err)
	}
	defer f.Close()
	k, err := ReadKeyring(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Add trusts the public key id (an nkey public key string).
//
// Errors: ErrKey.
func (k *Keyring) Add(id string) error {
	prefix := nkeys.Prefix(id)
	if prefix == nkeys.PrefixByteUnknown || prefix == nkeys.PrefixByteCurve || prefix == nkeys.PrefixByteSeed || prefix == nkeys.PrefixBytePrivate {
		return fmt.Errorf("%w: %q is not an nkey public key", ErrKey, id)
	}
	raw, err := nkeys.Decode(prefix, []byte(id))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: %q is not an nkey public key", ErrKey, id)
	}
	k.keys[id] = ed25519.PublicKey(raw)
	return nil
}

// Clone returns a copy of k that can be changed on its own; a nil k gives
// an empty keyring.
func (k *Keyring) Clone() *Keyring {
	c, _ := NewKeyring()
	if k != nil {
		maps.Copy(c.keys, k.keys)
		c.unsignedThrough, c.signed = k.unsignedThrough, k.signed
	}
	return c
}

// AllowUnsignedThrough lets transactions at stream sequences up to seq be
// unsigned: the history an engine wrote before it signed. A signature
// that is there is checked all the same.
func (k *Keyring) AllowUnsignedThrough(seq uint64) { k.unsignedThrough = seq }

// UnsignedThrough returns the sequence AllowUnsignedThrough set, 0 when none.
func (k *Keyring) UnsignedThrough() uint64 {
	if k == nil {
		return 0
	}
	return k.unsignedThrough
}

// IDs returns the trusted key ids, sorted.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(k.keys))
}

// Trusts reports whether id is a trusted key.
func (k *Keyring) Trusts(id string) bool {
	if k == nil {
		return false
	}
	_, ok := k.keys[id]
	return ok
}

// verify checks sig by key id over msg and returns the reason it fails,
// "" when it holds.
func (k *Keyring) verify(id string, sig, msg []byte) string {
	switch pub, ok := k.keys[id]; {
	case len(sig) == 0:
		return "signature missing"
	case id == "":
		return "signature has no key id"
	case !ok:
		return "signature by a key that is not trusted: " + id
	case !ed25519.Verify(pub, msg, sig):
		return "signature does not hold (key " + id + ")"
	}
	return ""
}

// checkTransaction checks tx's signature; seq is its stream sequence. It
// returns the reason it fails, "" when it holds.
func (k *Keyring) checkTransaction(seq uint64, tx *cairnv1.Transaction) string {
	if len(tx.GetSignature()) == 0 && tx.GetKeyId() == "" && seq <= k.unsignedThrough {
		return ""
	}
	msg, err := TransactionSigningBytes(tx)
	if err != nil {
		return err.Error()
	}
	if k.signed != nil && k.Trusts(tx.GetKeyId()) && k.signed.take(signedDigest(msg, tx.GetSignature())) {
		return ""
	}
	return k.verify(tx.GetKeyId(), tx.GetSignature(), msg)
}

// checkObject checks an object's payload digest against its metadata md
// and, with a keyring, its signature. o holds what the metadata says but
// Digest, which is the payload's. required says whether an object without
// a digest in its metadata is refused even without a keyring.
//
// An archive (not required) written before signing was turned on, whose
// last transaction is within k's AllowUnsignedThrough, is accepted without
// a signature (and without a digest): the transactions it holds are
// checked on their own as they are read, unsigned ones up to that bound
// as any reader accepts them.
func (k *Keyring) checkObject(md map[string]string, o ObjectSig, required bool) error {
	want, ok := md[MetaPayloadSHA256]
	unsignedOld := !required && k != nil && md[MetaSig] == "" && md[MetaSigKey] == "" && o.Seq <= k.UnsignedThrough()
	switch {
	case !ok && (required || k != nil) && !unsignedOld:
		return fmt.Errorf("%w: no payload digest in its metadata (%s)", ErrMalformed, MetaPayloadSHA256)
	case ok && want != hex.EncodeToString(o.Digest[:]):
		return fmt.Errorf("%w: the payload's SHA-256 %x does not match its metadata's %s", ErrMalformed, o.Digest, want)
	}
	if k == nil || unsignedOld {
		return nil
	}
	sig, err := base64.RawURLEncoding.DecodeString(md[MetaSig])
	if err != nil {
		return fmt.Errorf("%w: metadata %s does not decode", ErrSignature, MetaSig)
	}
	if reason := k.verify(md[MetaSigKey], sig, ObjectSigningBytes(o)); reason != "" {
		return fmt.Errorf("%w: %s", ErrSignature, reason)
	}
	return nil
}

// objectMeta returns the integrity metadata of an object: its payload's
// digest and, with a signer, its signature.
func objectMeta(s *Signer, o ObjectSig) map[string]string {
	md := map[string]string{MetaPayloadSHA256: hex.EncodeToString(o.Digest[:])}
	if s != nil {
		maps.Copy(md, s.signObject(o))
	}
	return md
}

// WithSigning makes the store sign the archive objects it writes with
// signer (nil: unsigned), and check with trust (nil: no signature checks)
// the signature of every transaction Verify reads and of every archive
// object it reads. An archive's payload digest is checked either way when
// its metadata has one.
func WithSigning(signer *Signer, trust *Keyring) StoreOption {
	return func(s *Store) { s.signer, s.trust = signer, trust }
}

// Trust returns the keyring WithSigning gave the store, nil when none:
// readers pass it to their chains (WithTrust).
func (s *Store) Trust() *Keyring { return s.trust }
