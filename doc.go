// Package cairn embeds the Cairn event-sourced graph engine in a Go program.
//
// Open starts an engine: an embedded NATS server with JetStream (or a
// connection to an external one), the event store, a Proto.Actor cluster
// member hosting one virtual actor (grain) per graph, and the "cairn" NATS
// micro service. Execute sends a command envelope to its graph's grain, which
// validates it, appends it as one CID-chained transaction and answers with
// the new head CID and stream sequence.
//
//	eng, err := cairn.Open(ctx, cairn.DefaultConfig(dir))
//	if err != nil { ... }
//	defer eng.Close(ctx)
//	rep, err := eng.Execute(ctx, &cairnv1.CommandEnvelope{
//		GraphId: "deps", CommandId: "c-1",
//		Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}},
//	})
//	res, err := eng.Store().Verify(ctx, "deps")
package cairn
