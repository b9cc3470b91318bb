package pgserver_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-graph/cairn/internal/pgserver"
)

// TestStartQueryClose needs PostgreSQL (make deps installs it): a missing
// server fails the test, it never skips it.
func TestStartQueryClose(t *testing.T) {
	ctx := context.Background()
	srv, err := pgserver.Start(ctx, pgserver.WithSetting("shared_buffers", "16MB"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	var sb string
	if err := conn.QueryRow(ctx, "SHOW shared_buffers").Scan(&sb); err != nil || sb != "16MB" {
		t.Errorf("shared_buffers = %q, %v; want 16MB", sb, err)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srv.DataDir()); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srv.DataDir()); !os.IsNotExist(err) {
		t.Errorf("data dir still there after Close: %v", err)
	}
}

func TestWrongBinDir(t *testing.T) {
	_, err := pgserver.Start(context.Background(), pgserver.WithBinDir(t.TempDir()))
	if err == nil {
		t.Fatal("started without binaries")
	}
}
