package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// sqliteRun is what the scenarios measured on SQLite.
type sqliteRun struct {
	rows      []*row
	rss, peak int64
}

// report is the outcome of a run.
type report struct {
	sqlite    *sqliteRun
	cfg       Config
	rows      []*row
	rss, peak int64
	pruned    int64
	elapsed   time.Duration

	commits, writes int64 // the server's group commits, and the writes they held
}

func (r *report) row(key string) *row {
	for _, x := range r.rows {
		if x.key == key {
			return x
		}
	}
	return nil
}

// print writes the table, then the bench: line.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\napiv4 bench: %s events in one account + %s over %d accounts; "+
		"%d rounds of %s per side; pages of %d\n\n", count(r.cfg.Events), count(r.cfg.Events),
		r.cfg.Accounts, r.cfg.Rounds, r.cfg.Duration/time.Duration(r.cfg.Rounds), pageSize)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tclients\treq/s\tp50 ms\tp99 ms\tdb req/s\tdb p50 ms\tratio\tfailed\t")
	for _, x := range r.rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%d\t\n", x.name, x.clients,
			x.server.rps(), ms(x.server.hist.quantile(0.5)), ms(x.server.hist.quantile(0.99)),
			x.ceiling.rps(), ms(x.ceiling.hist.quantile(0.5)), ratio(x.server.rps(), x.ceiling.rps()),
			x.server.failures+x.ceiling.failures)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nserver RSS %.0f MB at the end, %.0f MB at its peak; %s events pruned "+
		"by the server at start; run took %s\n", mb(r.rss), mb(r.peak), count(r.pruned),
		r.elapsed.Round(time.Second))
	fmt.Fprintln(w, "req/s: the server over loopback; db: the same statements straight "+
		"against PostgreSQL (pgx, prepared); ratio = req/s / db req/s")
	if r.commits > 0 {
		fmt.Fprintf(w, "inserts: the server shared %.1f writes per commit on average (%d in %d commits); "+
			"db commits each write alone\n", float64(r.writes)/float64(r.commits), r.writes, r.commits)
	}
	if r.sqlite != nil {
		fmt.Fprintf(w, "\nthe same scenarios on SQLite (one connection; no ceiling measured)\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tclients\treq/s\tp50 ms\tp99 ms\tfailed\t")
		for _, x := range r.sqlite.rows {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%d\t\n", x.name, x.clients, x.server.rps(),
				ms(x.server.hist.quantile(0.5)), ms(x.server.hist.quantile(0.99)), x.server.failures)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nserver RSS on SQLite %.0f MB at the end, %.0f MB at its peak\n",
			mb(r.sqlite.rss), mb(r.sqlite.peak))
	}
	rows := r.rows
	if r.sqlite != nil {
		rows = append(slices.Clone(rows), r.sqlite.rows...)
	}
	for _, x := range rows {
		for _, res := range []*result{&x.server, &x.ceiling} {
			if res.firstErr != nil {
				fmt.Fprintf(w, "%s: first failure: %v\n", x.name, res.firstErr)
			}
		}
	}
	fmt.Fprintln(w, r.line())
}

// line is the machine-readable summary: each X_over_Y is how many times
// more requests per second Y served than X.
func (r *report) line() string {
	var fields []string
	add := func(name, format string, keys []string, value func(rows ...*row) float64) {
		var rows []*row
		for _, k := range keys {
			if rows = append(rows, r.row(k)); rows[len(rows)-1] == nil {
				return // not measured in this run
			}
		}
		fields = append(fields, fmt.Sprintf("%s="+format, name, value(rows...)))
	}
	serverOverDB := func(x ...*row) float64 { return ratio(x[0].server.rps(), x[0].ceiling.rps()) }
	slower := func(x ...*row) float64 { return ratio(x[1].server.rps(), x[0].server.rps()) }
	p50 := func(x ...*row) float64 { return ms(x[0].server.hist.quantile(0.5)) }
	add("page1_ratio", "%.2f", []string{"page1"}, serverOverDB)
	add("deep_over_first", "%.2f", []string{"deep", "page1"}, slower)
	add("big_over_small", "%.2f", []string{"page1", "small"}, slower)
	add("seen_p50_ms", "%.2f", []string{"seen"}, p50)
	add("read_p50_ms", "%.2f", []string{"read"}, p50)
	add("insert_rps_one_account", "%.0f", []string{"insert"},
		func(x ...*row) float64 { return x[0].server.rps() })
	fields = append(fields, fmt.Sprintf("rss_mb=%.0f", mb(r.peak)))
	add("event_finished_over_first", "%.2f", []string{"event_finished", "page1"}, slower)
	add("resource_free_over_first", "%.2f", []string{"resource_free", "page1"}, slower)
	// A failed request counts in req/s like any other, so a run with
	// failures measured something else: the line says how many.
	var failed uint64
	for _, x := range r.rows {
		failed += x.server.failures + x.ceiling.failures
	}
	fields = append(fields, fmt.Sprintf("failed=%d", failed))
	return "bench: " + strings.Join(fields, " ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
