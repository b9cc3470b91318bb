// Package pgserver starts a throwaway PostgreSQL server for the benchmark
// harness and its tests: initdb into a fresh temporary directory, then the
// postmaster as a child process listening on a free port of 127.0.0.1 only,
// with trust authentication for local connections. Close stops it and
// removes the directory.
//
// It uses the server binaries of Debian's postgresql package
// (/usr/lib/postgresql/<version>/bin, the newest version) or, failing that,
// the initdb and postgres found on PATH. PostgreSQL refuses to run as root:
// under root the server runs as the user "postgres" (which the package
// creates), through the child process's credentials.
//
//	srv, err := pgserver.Start(ctx)
//	if err != nil { ... } // errors.Is(err, pgserver.ErrNotInstalled): apt-get install postgresql
//	defer srv.Close(ctx)
//	conn, err := pgx.Connect(ctx, srv.URL())
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is the database superuser initdb creates; Database the database the
// server starts with.
const (
	User     = "cairn"
	Database = "postgres"
)

// Server is a running throwaway PostgreSQL.
type Server struct {
	bin  string // the directory of initdb and postgres
	root string // temporary directory: data/, the socket and the log
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited
}

type options struct {
	binDir   string
	settings []string
	timeout  time.Duration
}

// Option configures Start.
type Option func(*options)

// WithBinDir takes initdb and postgres from dir instead of looking for them.
func WithBinDir(dir string) Option { return func(o *options) { o.binDir = dir } }

// WithSetting passes one configuration setting to the server (postgres -c
// name=value); by default every setting is PostgreSQL's default but the
// listen address, port and socket directory.
func WithSetting(name, value string) Option {
	return func(o *options) { o.settings = append(o.settings, name+"="+value) }
}

// WithTimeout bounds initdb plus the server's start until it accepts a
// connection. Default 2 minutes.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// FindBinDir returns the directory holding PostgreSQL's initdb and postgres:
// the newest /usr/lib/postgresql/<version>/bin, else the directory of initdb
// on PATH. It returns ErrNotInstalled when there is none.
func FindBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil && isExec(filepath.Join(filepath.Dir(p), "postgres")) {
			return filepath.Dir(p), nil
		}
	}
	return "", ErrNotInstalled
}

// versionOf is the major version in /usr/lib/postgresql/<version>/bin, 0
// when it is not a number.
func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start initialises a database cluster in a new temporary directory and
// starts its server, returning once it accepts connections. Errors:
// ErrNotInstalled, or the failing step with the end of its output.
func Start(ctx context.Context, opts ...Option) (_ *Server, err error) {
	o := options{timeout: 2 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if o.binDir == "" {
		if o.binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s := &Server{bin: o.binDir, done: make(chan struct{})}
	if s.root, err = os.MkdirTemp("", "cairn-pg-"); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(s.root)
		}
	}()
	cred, err := credential(s.root)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(s.root, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(s.bin, "initdb"), "-D", data, "-U", User, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = s.root
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("postgres: initdb: %w\n%s", err, tail(out))
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(s.port), "-k", s.root, "-c", "listen_addresses=127.0.0.1"}
	for _, set := range o.settings {
		args = append(args, "-c", set)
	}
	logf, err := os.Create(filepath.Join(s.root, "server.log"))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	s.cmd = exec.Command(filepath.Join(s.bin, "postgres"), args...)
	s.cmd.Dir = s.root
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Pdeathsig: a harness that dies does not leave a server behind (its
	// backends exit when the postmaster does).
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: start: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// credential returns the credential the server runs under: nil (this
// process's) unless this process is root, then the user "postgres", who
// is given dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres: running as root needs the user \"postgres\" to run the server as (Debian's postgresql package creates it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres: user postgres: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// waitReady polls until the server accepts a connection.
func (s *Server) waitReady(ctx context.Context) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.URL())
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited before it accepted connections%s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections: %w: %w%s", ctx.Err(), err, s.logTail())
		case <-time.After(20 * time.Millisecond): // polling a child process: nothing to wait on
		}
	}
}

// URL is the server's connection string: TCP on 127.0.0.1, user User,
// database Database.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, s.port, Database)
}

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// DataDir is the database cluster's directory.
func (s *Server) DataDir() string { return filepath.Join(s.root, "data") }

// Pid is the postmaster's process id. Every other server process (the
// backends and background workers) is its child.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Close stops the server (a fast shutdown: SIGINT), waiting at most until
// ctx is done before it kills it, and removes its directory.
func (s *Server) Close(ctx context.Context) error {
	_ = s.cmd.Process.Signal(os.Interrupt)
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		err = fmt.Errorf("postgres did not stop: %w", ctx.Err())
		s.kill()
	}
	return errors.Join(err, os.RemoveAll(s.root))
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// logTail is the end of the server's log, for an error message.
func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.root, "server.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\npostgres log (end):\n" + tail(b)
}

func tail(b []byte) string {
	return strings.TrimSpace(string(b[max(0, len(b)-2000):]))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("postgres: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
