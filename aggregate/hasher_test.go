package aggregate

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// A Core's hasher, used again from envelope to envelope (a large one, then
// smaller ones, another graph, the same again), gives what a fresh
// marshal of the hashed fields gives, and leaves nothing of one envelope in
// the next one's hash.
func TestHasherReusedMatchesFreshHash(t *testing.T) {
	add := func(id string, size int) *cairnv1.Command {
		return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{
			NodeId: id, Components: []*cairnv1.Component{{Type: "t", Value: []byte(strings.Repeat("v", size))}}}}}
	}
	envs := []*cairnv1.CommandEnvelope{
		{GraphId: "g1", CommandId: "c1", Commands: []*cairnv1.Command{add("a", 4000), add("b", 10)}},
		{GraphId: "g1", CommandId: "c2", Commands: []*cairnv1.Command{add("a", 1)}},
		{GraphId: "g2", CommandId: "c3", Issuer: "someone", Commands: []*cairnv1.Command{add("a", 1)}},
		{GraphId: "g1", CommandId: "c2", Commands: []*cairnv1.Command{add("a", 1)}},
	}
	var h hasher
	for i, env := range envs {
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(&cairnv1.CommandEnvelope{GraphId: env.GetGraphId(), Commands: env.GetCommands()})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		got := h.contentHash(env)
		if !bytes.Equal(got, sum[:ContentHashSize]) || !bytes.Equal(ContentHash(env), got) {
			t.Errorf("envelope %d: hash %x, want %x", i, got, sum[:ContentHashSize])
		}
		if h.env.GraphId != "" || h.env.Commands != nil {
			t.Errorf("envelope %d: the hasher still holds the envelope's fields", i)
		}
	}
	if a, b := h.contentHash(envs[1]), h.contentHash(envs[3]); !bytes.Equal(a, b) || &a[0] == &b[0] {
		t.Errorf("equal envelopes: %x and %x, or one shared slice", a, b)
	}
}
