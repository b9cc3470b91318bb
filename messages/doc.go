// Package messages holds Cairn's protobuf schemas (cairn/v1/*.proto) and
// their generated Go code (package cairnv1). Regenerate with `make proto`;
// `make test` fails when the committed code is stale, when `buf lint` fails
// or when a change breaks wire compatibility with main.
package messages
