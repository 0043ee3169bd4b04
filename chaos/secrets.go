package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"apiv4/invariant"
)

// secrets are the tokens and root passwords the run sent.
type secrets struct {
	mu   sync.Mutex
	list []string
}

func newSecrets() *secrets { return &secrets{} }

func (s *secrets) add(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, secret)
}

// findSecrets looks for every secret of the run in every server log, in
// PostgreSQL's log and in every row of every table, and returns one
// violation per place that holds one; and for data races, panics and
// crashes the servers reported.
func (h *harness) findSecrets(ctx context.Context) ([]invariant.Violation, error) {
	places := map[string][]byte{}
	for _, path := range append(h.serverLogs(), h.pg.log) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("chaos: %w", err)
		}
		places[filepath.Base(path)] = b
	}
	dump, err := dumpTables(ctx, h.dbURL)
	if err != nil {
		return nil, err
	}
	places["database"] = dump

	h.secrets.mu.Lock()
	defer h.secrets.mu.Unlock()
	var vs []invariant.Violation
	for _, s := range h.servers {
		for _, crash := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if bytes.Contains(places[filepath.Base(s.log)], []byte(crash)) {
				vs = append(vs, invariant.Violation{Kind: "server crash or race",
					Detail: fmt.Sprintf("%s reports %q", filepath.Base(s.log), crash)})
			}
		}
	}
	for name, content := range places {
		for _, s := range h.secrets.list {
			if bytes.Contains(content, []byte(s)) {
				vs = append(vs, invariant.Violation{Kind: "secret in the clear",
					Detail: fmt.Sprintf("%s holds the secret %.6s… (%d secrets sought)", name, s, len(h.secrets.list))})
			}
		}
	}
	return vs, nil
}

// dumpTables returns every row of every table of the public schema as
// text.
func dumpTables(ctx context.Context, url string) ([]byte, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx,
		`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("chaos: list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()

	var out bytes.Buffer
	for _, t := range tables {
		rs, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT t::text FROM %q AS t`, t))
		if err != nil {
			return nil, fmt.Errorf("chaos: dump %s: %w", t, err)
		}
		for rs.Next() {
			var line string
			if err := rs.Scan(&line); err != nil {
				rs.Close()
				return nil, err
			}
			out.WriteString(line)
			out.WriteByte('\n')
		}
		rs.Close()
	}
	return out.Bytes(), nil
}

func commandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
