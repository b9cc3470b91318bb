// Package readmodel will hold the compact per-graph read models that
// projection shards build from the event stream: dense node indices,
// adjacency arrays, interned components, indices, bloom filters, metrics, the
// query engine and its cache, and point-in-time views.
//
// Nothing lives here yet; see issue "Read model".
package readmodel
