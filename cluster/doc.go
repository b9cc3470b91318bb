// Package cluster sets up Proto.Actor cluster members for Cairn: their
// membership and their identity lookup.
//
// Start starts a member hosting the given kinds (today: the "graph" kind of
// package actors). Config.Membership says how members find each other:
//
//   - MembershipLocal (the default): a cluster of one, on protoactor's
//     in-memory provider. No I/O: the member starts in milliseconds.
//
//   - MembershipNATSKV (cairn serve --cluster NAME): each member writes a
//     key of its own, with a TTL, into the JetStream KV bucket
//     "cairn-members-NAME" and rewrites it every heartbeat; every member
//     watches the bucket. A member whose key expires is dropped by the
//     others; a member whose lease ends fences itself (KVConfig).
//
//   - MembershipK8s (cairn serve --cluster NAME --cluster-provider k8s, in
//     a binary built with -tags k8s): protoactor's Kubernetes provider,
//     the ready pods labelled with the cluster's name. No lease and no
//     self-fencing; out of a pod it fails with ErrNotInPod.
//
// protoactor's other providers (automanaged, consul, etcd, zk) are not
// wired: each needs a service of its own beside NATS, which Cairn runs
// anyway. See Membership.
//
// With replicas, the NATS KV members keep the bucket's leader off the node
// that leads the streams of KVConfig.ApartFrom (the event stream), so that
// one node's death does not stop the writes and the heartbeats at once.
//
// Identities are placed by Lookup, Cairn's identity lookup: rendezvous
// hashing over the live members hosting the kind, look-ups bounded by the
// caller's context (Lookup.GetContext; actors.Dispatcher uses it), and a
// hand-over in which a new owner waits for the previous owner's stop.
// protoactor's gossip is off and its MemberList is left empty: the
// provider publishes the topology on the actor system's event stream.
//
//	grains, _ := actors.NewGraphKind(ctx, store, actors.DefaultGrainConfig())
//	cfg := cluster.DefaultConfig()
//	cfg.Name, cfg.Membership, cfg.KV.JetStream = "prod", cluster.MembershipNATSKV, js
//	m, err := cluster.Start(cfg, grains.Kind())
//	defer m.Close(ctx)            // after m.Leave() and grains.StopAll(ctx, m.System().Root)
//	pid, err := m.Lookup().GetContext(ctx, "my-graph", actors.GraphKind)
//	<-m.Fenced()                  // closed if the member fences itself; m.Err() says why
package cluster
