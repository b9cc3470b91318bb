package persistence_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/persistence"
)

func TestStoreConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*persistence.StoreConfig)
		want   []string // every problem, in order; nil: valid
	}{
		{"defaults", func(*persistence.StoreConfig) {}, nil},
		{"3 replicas", func(c *persistence.StoreConfig) { c.Replicas = 3 }, nil},
		{"5 replicas", func(c *persistence.StoreConfig) { c.Replicas = 5 }, nil},
		{"limits", func(c *persistence.StoreConfig) { c.MaxBytes, c.MaxMsgSize = 1<<30, 1<<20 }, nil},
		{"empty stream", func(c *persistence.StoreConfig) { c.Stream = "" }, []string{"stream name is empty"}},
		{"empty prefix", func(c *persistence.StoreConfig) { c.SubjectPrefix = "" }, []string{"subject prefix is empty"}},
		{"0 replicas", func(c *persistence.StoreConfig) { c.Replicas = 0 }, []string{"replicas must be 1, 3 or 5, not 0"}},
		{"2 replicas", func(c *persistence.StoreConfig) { c.Replicas = 2 }, []string{"replicas must be 1, 3 or 5, not 2"}},
		{"zero duplicate window", func(c *persistence.StoreConfig) { c.DuplicateWindow = 0 }, []string{"duplicate window must be positive"}},
		{"negative op timeout", func(c *persistence.StoreConfig) { c.OpTimeout = -time.Second }, []string{"op timeout must be positive"}},
		{"everything wrong", func(c *persistence.StoreConfig) { *c = persistence.StoreConfig{Replicas: 7} }, []string{
			"stream name is empty",
			"subject prefix is empty",
			"replicas must be 1, 3 or 5, not 7",
			"duplicate window must be positive",
			"op timeout must be positive",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := persistence.DefaultStoreConfig()
			tc.modify(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			// errors.Join: one line per problem, each its own error.
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("Validate() = %T, not a joined error", err)
			}
			var got []string
			for _, e := range joined.Unwrap() {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Validate() problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestDefaultStoreConfig(t *testing.T) {
	want := persistence.StoreConfig{
		Stream: "event-store", SubjectPrefix: "cairn.events", Replicas: 1, MaxBytes: -1, MaxMsgSize: -1,
		DuplicateWindow: 2 * time.Minute, OpTimeout: 10 * time.Second,
	}
	if got := persistence.DefaultStoreConfig(); got != want {
		t.Errorf("DefaultStoreConfig() = %+v, want the documented %+v", got, want)
	}
}

// An invalid config is refused before JetStream is asked anything: a nil
// JetStream would panic if it were.
func TestOpenStoreRejectsInvalidConfig(t *testing.T) {
	c := persistence.DefaultStoreConfig()
	c.Replicas = 2
	if _, err := persistence.OpenStore(context.Background(), nil, c); err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Errorf("OpenStore with 2 replicas: %v, want a config error", err)
	}
}
