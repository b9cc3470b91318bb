package persistence

import (
	"errors"
	"fmt"
	"time"
)

// StoreConfig configures the event-store stream. DefaultStoreConfig documents
// every default.
type StoreConfig struct {
	// Stream is the JetStream stream name. Default "event-store".
	Stream string
	// SubjectPrefix is the subject prefix; graph g is stored on
	// "<SubjectPrefix>.<g>". Default "cairn.events".
	SubjectPrefix string
	// Replicas is the stream's replica count (1, 3 or 5). Default 1.
	Replicas int
	// MaxBytes limits the stream's size; -1 is unlimited. Default -1.
	MaxBytes int64
	// MaxMsgSize limits one transaction message; -1 uses the server's limit.
	// Default -1.
	MaxMsgSize int32
	// DuplicateWindow is how long a transaction id is remembered for
	// de-duplicating publish retries. Default 2 minutes.
	DuplicateWindow time.Duration
	// OpTimeout bounds one JetStream operation when ctx has no deadline.
	// Default 10 seconds.
	OpTimeout time.Duration
}

// DefaultStoreConfig returns the defaults.
func DefaultStoreConfig() StoreConfig {
	return StoreConfig{
		Stream:          "event-store",
		SubjectPrefix:   "cairn.events",
		Replicas:        1,
		MaxBytes:        -1,
		MaxMsgSize:      -1,
		DuplicateWindow: 2 * time.Minute,
		OpTimeout:       10 * time.Second,
	}
}

// Validate returns every problem with c, joined.
func (c StoreConfig) Validate() error {
	var errs []error
	if c.Stream == "" {
		errs = append(errs, errors.New("stream name is empty"))
	}
	if c.SubjectPrefix == "" {
		errs = append(errs, errors.New("subject prefix is empty"))
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1, 3 or 5, not %d", c.Replicas))
	}
	if c.DuplicateWindow <= 0 {
		errs = append(errs, errors.New("duplicate window must be positive"))
	}
	if c.OpTimeout <= 0 {
		errs = append(errs, errors.New("op timeout must be positive"))
	}
	return errors.Join(errs...)
}
