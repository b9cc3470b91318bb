// Package cluster sets up Proto.Actor cluster members for Cairn.
//
// Start starts a member hosting the given kinds (today: the "graph" kind of
// package actors). By default the cluster has a single member with
// in-memory membership and distributed-hash identity lookup; grains are
// placed on the member that owns their identity.
//
//	grains, _ := actors.NewGraphKind(ctx, store, actors.DefaultGrainConfig())
//	m, err := cluster.Start(cluster.DefaultConfig(), grains.Kind())
//	defer m.Close(ctx)            // after grains.StopAll(ctx, m.System().Root)
//	reply, err := m.Cluster().Request("my-graph", actors.GraphKind, envelope)
package cluster
