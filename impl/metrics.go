package impl

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"apiv4/db"
)

// Metrics are the Prometheus metrics of one server process, served at
// /metrics. Request metrics count this process's requests; job and event
// metrics are read from the database when scraped, so they describe the
// whole deployment, the same from every process.
type Metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.HistogramVec
	rateLimited  *prometheus.CounterVec
	streams      prometheus.Gauge
	streamFrames prometheus.Counter
}

// NewMetrics returns the metrics of a process serving store, with the Go
// runtime and process collectors.
func NewMetrics(store *db.Store, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiv4_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method, route (the spec's path) and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route", "status"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiv4_rate_limit_refusals_total",
			Help: "Requests refused with 429 by the rate limiter, by route.",
		}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apiv4_event_streams_open",
			Help: "Event streams this process is serving now.",
		}),
		streamFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apiv4_event_stream_frames_total",
			Help: "Events this process has pushed to event streams.",
		}),
	}
	m.reg.MustRegister(m.requests, m.rateLimited, m.streams, m.streamFrames,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&storeCollector{store: store, log: log})
	return m
}

// RateLimitRefused counts one request the rate limiter refused; route is
// the echo route (c.Path()). It is safe for concurrent use.
func (m *Metrics) RateLimitRefused(route string) { m.rateLimited.WithLabelValues(route).Inc() }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observe is the outermost middleware: it times every request and counts
// it by route and final status. Event streams last as long as their
// client, so they are counted in apiv4_event_streams_open instead.
func (m *Metrics) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == streamRoute {
			return err
		}
		if route == "" || route == "/*" {
			route = "unmatched" // unbounded paths must not become labels
		}
		status := c.Response().Status
		if err != nil && !c.Response().Committed {
			status = http.StatusInternalServerError
		}
		m.requests.WithLabelValues(methodLabel(method(c)), route, strconv.Itoa(status)).
			Observe(time.Since(start).Seconds())
		return err
	}
}

// methodLabel is a request's method as a label: any client may send any
// token as a method, so those HTTP does not define are one label, "other".
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// streamRoute is the echo route of streamEvents.
const streamRoute = "/v4/account/events/stream"

// storeCollector reads the job queue and event counters at each scrape,
// and this process's group commits.
type storeCollector struct {
	store *db.Store
	log   *slog.Logger
}

var (
	jobsQueuedDesc = prometheus.NewDesc("apiv4_jobs_queued",
		"Jobs waiting for a runner, over the deployment.", nil, nil)
	jobsRunningDesc = prometheus.NewDesc("apiv4_jobs_running",
		"Jobs leased to a runner, over the deployment.", nil, nil)
	jobsAgeDesc = prometheus.NewDesc("apiv4_jobs_oldest_queued_seconds",
		"Age of the oldest queued job, 0 when none.", nil, nil)
	eventsDesc = prometheus.NewDesc("apiv4_events_written_total",
		"Events recorded, over the deployment.", nil, nil)
	changesDesc = prometheus.NewDesc("apiv4_event_changes_total",
		"Event inserts and status or progress changes, over the deployment.", nil, nil)
	groupCommitsDesc = prometheus.NewDesc("apiv4_group_commits_total",
		"Commits this process sent for writes of one statement (PostgreSQL), each shared by "+
			"the writes of one account in flight at once.", nil, nil)
	groupWritesDesc = prometheus.NewDesc("apiv4_group_commit_writes_total",
		"Writes in those commits; over apiv4_group_commits_total, the writes per commit.", nil, nil)
	scrapeErrDesc = prometheus.NewDesc("apiv4_store_scrape_error",
		"1 when the last scrape could not read the database.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsQueuedDesc, jobsRunningDesc, jobsAgeDesc,
		eventsDesc, changesDesc, groupCommitsDesc, groupWritesDesc, scrapeErrDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	commits, writes := c.store.GroupCommits()
	ch <- prometheus.MustNewConstMetric(groupCommitsDesc, prometheus.CounterValue, float64(commits))
	ch <- prometheus.MustNewConstMetric(groupWritesDesc, prometheus.CounterValue, float64(writes))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.store.Stats(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "metrics: read store stats", "err", err)
		ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 0)
	ch <- prometheus.MustNewConstMetric(jobsQueuedDesc, prometheus.GaugeValue, float64(st.JobsQueued))
	ch <- prometheus.MustNewConstMetric(jobsRunningDesc, prometheus.GaugeValue, float64(st.JobsRunning))
	ch <- prometheus.MustNewConstMetric(jobsAgeDesc, prometheus.GaugeValue, st.OldestQueued.Seconds())
	ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(st.EventsWritten))
	ch <- prometheus.MustNewConstMetric(changesDesc, prometheus.CounterValue, float64(st.EventChanges))
}
