package persistence

import "github.com/nats-io/nkeys"

// EngineKey is the engine's own identity of a server with users, for
// tests that try to use it from outside.
func EngineKey(s *Server) nkeys.KeyPair { return s.engine }
