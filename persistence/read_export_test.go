package persistence

// SetDirectReads turns direct-get reads on or off, for benchmarks that
// compare them with a consumer's.
func SetDirectReads(on bool) { noDirectReads = !on }
