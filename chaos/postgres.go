package chaos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// postgres is a PostgreSQL server of the harness's own: initialised in a
// directory of the run, listening on 127.0.0.1 only, on a port nobody
// else uses. It is the only server the harness ever stops or restarts.
type postgres struct {
	bin    string // the directory of initdb and pg_ctl
	data   string // its data directory
	log    string // its log file
	port   int
	asUser string // run its tools as this user ("" for the harness's own)
}

// findPGBin returns the directory of PostgreSQL's server tools: dir if
// given, else the newest /usr/lib/postgresql/*/bin, else the directory of
// the initdb found on PATH.
func findPGBin(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
		return filepath.Dir(found[0]), nil
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("chaos: no PostgreSQL server tools (initdb, pg_ctl); give -pg-bin")
	}
	return filepath.Dir(initdb), nil
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// startPostgres initialises a cluster in dir and starts it. initdb refuses
// to run as root, so as root the cluster belongs to the postgres user and
// its tools run through runuser.
func startPostgres(ctx context.Context, bin, dir string) (*postgres, error) {
	p := &postgres{bin: bin, data: filepath.Join(dir, "pgdata"), log: filepath.Join(dir, "postgres.log")}
	if os.Geteuid() == 0 {
		u, err := osuser.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("chaos: running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		p.asUser = "postgres"
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.port = port

	if err := p.run(ctx, "initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--no-sync", "--no-instructions"); err != nil {
		return nil, err
	}
	// Logical decoding lets the checker replay every commit; fsync is off
	// because the data is thrown away and only clean restarts are made.
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
wal_level = logical
max_replication_slots = 4
max_wal_senders = 4
max_connections = 300
fsync = off
full_page_writes = off
`, p.port, dir)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// run runs one of the server tools, as the cluster's owner.
func (p *postgres) run(ctx context.Context, tool string, args ...string) error {
	path := filepath.Join(p.bin, tool)
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: %s: %v\n%s", tool, err, out)
	}
	return nil
}

// start starts the server and waits until it accepts connections.
func (p *postgres) start(ctx context.Context) error {
	return p.run(ctx, "pg_ctl", "-D", p.data, "-l", p.log, "-w", "-t", "60", "start")
}

// stop stops the server: fast ends every session at once; immediate
// does not even wait for them to be told.
func (p *postgres) stop(ctx context.Context, mode string) error {
	return p.run(ctx, "pg_ctl", "-D", p.data, "-m", mode, "-w", "-t", "60", "stop")
}

// stopCommand is the shell command that stops the server at once, for a
// watchdog.
func (p *postgres) stopCommand() string {
	cmd := fmt.Sprintf("%s -D %s -m immediate stop", filepath.Join(p.bin, "pg_ctl"), p.data)
	if p.asUser != "" {
		cmd = "runuser -u " + p.asUser + " -- " + cmd
	}
	return cmd
}

// url returns the URL of a database of the server.
func (p *postgres) url(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, database)
}

// createDatabase creates a database.
func (p *postgres) createDatabase(ctx context.Context, name string) error {
	db, err := sql.Open("pgx", p.url("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("chaos: create database: %w", err)
	}
	return nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chaos: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
