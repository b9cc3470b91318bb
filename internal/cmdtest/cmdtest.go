// Package cmdtest builds command envelopes for tests: one command of each
// kind, with the fields tests care about and fixed defaults for the rest
// (graph type "test", edge type "dep").
package cmdtest

import cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"

// Envelope wraps commands for graph under command id.
func Envelope(graph, id string, cmds ...*cairnv1.Command) *cairnv1.CommandEnvelope {
	return &cairnv1.CommandEnvelope{GraphId: graph, CommandId: id, Commands: cmds}
}

// Comp is the component (typ, value).
func Comp(typ, value string) *cairnv1.Component {
	return &cairnv1.Component{Type: typ, Value: []byte(value)}
}

// CreateGraph creates the envelope's graph, of type "test".
func CreateGraph() *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{GraphType: "test"}}}
}

// AddNode adds node id with components.
func AddNode(id string, comps ...*cairnv1.Component) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id, Components: comps}}}
}

// AddNodeCats adds node id with categories.
func AddNodeCats(id string, cats ...string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id, Categories: cats}}}
}

// SetComps sets components of node id.
func SetComps(id string, comps ...*cairnv1.Component) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{NodeId: id, Components: comps}}}
}

// RemoveComps removes components of node id by type.
func RemoveComps(id string, types ...string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_RemoveNodeComponents{RemoveNodeComponents: &cairnv1.RemoveNodeComponents{NodeId: id, Types: types}}}
}

// RemoveNode removes node id and its edges.
func RemoveNode(id string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_RemoveNode{RemoveNode: &cairnv1.RemoveNode{NodeId: id}}}
}

// Connect adds edge from source to target, of type "dep".
func Connect(edge, source, target string, comps ...*cairnv1.Component) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{EdgeId: edge, Source: source, Target: target, EdgeType: "dep", Components: comps}}}
}

// Disconnect removes edge.
func Disconnect(edge string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_DisconnectNodes{DisconnectNodes: &cairnv1.DisconnectNodes{EdgeId: edge}}}
}

// DeleteGraph deletes the envelope's graph.
func DeleteGraph() *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_DeleteGraph{DeleteGraph: &cairnv1.DeleteGraph{}}}
}
