package cluster

import "errors"

// Errors of the identity lookup.
var (
	// ErrFenced: this member fenced itself (its membership lease ended);
	// it activates nothing and routes nothing.
	ErrFenced = errors.New("cluster member is fenced: its membership lease ended")
	// ErrMemberLeft: the member a request went to left the topology
	// before it answered.
	ErrMemberLeft = errors.New("the member left the cluster")
	// ErrNoMember: no live member hosts the kind.
	ErrNoMember = errors.New("no live member hosts the kind")
)
