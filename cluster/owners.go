package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/nats-io/nats.go/jetstream"
)

// MemberInfo is one live member as its key in the membership bucket
// shows it.
type MemberInfo struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Kinds []string `json:"kinds"`
}

// Address is the member's remote address, host:port.
func (m MemberInfo) Address() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// BucketName is the membership bucket of the cluster name when its
// KVConfig names none.
func BucketName(name string) string { return "cairn-members-" + name }

// Members reads the live members of the cluster name from its membership
// bucket (BucketName(name)), sorted by id. Keys whose value is not a
// member record are passed over.
func Members(ctx context.Context, js jetstream.JetStream, name string) ([]MemberInfo, error) {
	kv, err := js.KeyValue(ctx, BucketName(name))
	if err != nil {
		return nil, fmt.Errorf("membership bucket %s: %w", BucketName(name), err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("membership bucket %s: %w", BucketName(name), err)
	}
	var out []MemberInfo
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired since it was listed
		}
		if err != nil {
			return nil, fmt.Errorf("membership bucket %s: member %s: %w", BucketName(name), key, err)
		}
		var r MemberInfo
		if json.Unmarshal(e.Value(), &r) != nil || r.ID != key {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b MemberInfo) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}

// OwnerOf returns the member that owns identity of kind among members:
// the placement every member's Lookup computes from the same topology.
// It is false when no member hosts kind.
func OwnerOf(kind, identity string, members []MemberInfo) (MemberInfo, bool) {
	t := &cluster.ClusterTopology{}
	for _, m := range members {
		t.Members = append(t.Members, &cluster.Member{Id: m.ID, Host: m.Host, Port: int32(m.Port), Kinds: m.Kinds})
	}
	o := newTable(t).owner(kind, identity)
	if o == nil {
		return MemberInfo{}, false
	}
	return MemberInfo{ID: o.Id, Host: o.Host, Port: int(o.Port), Kinds: o.Kinds}, true
}
