package api

// Service identity on NATS: the "cairn" micro service that every engine
// member runs.
const (
	ServiceName    = "cairn"
	ServiceVersion = "0.1.0"
	// CommandSubject takes a protobuf CommandEnvelope and answers a protobuf
	// CommandReply.
	CommandSubject = "cairn.command"
	// QuerySubject takes a protobuf QueryRequest and answers a protobuf
	// QueryReply.
	QuerySubject = "cairn.query"
)
