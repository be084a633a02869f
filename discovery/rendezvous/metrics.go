// Package rendezvous holds what `ferry rendezvous` adds around the mailbox
// server (discovery/mailbox) and the relay (transport): its Prometheus
// metrics. It is the only package that imports the Prometheus client, so
// that neither the mailbox client nor the transport, which every ferry
// client links, depends on it.
//
// Metrics come from three places: the mailbox Server's and the
// RelayServer's own counters (Stats), read at each scrape; the store,
// wrapped by InstrumentStore; and the Go runtime and process collectors.
// Labels carry only fixed words (a reason, a limit, a store operation):
// never codes, nameplates, sides, tokens, addresses or message bodies.
package rendezvous

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ferry/discovery/mailbox"
	"ferry/transport"
)

// namespace prefixes every metric of ferry's own.
const namespace = "ferry_rendezvous"

// Metrics is the registry `ferry rendezvous --metrics` serves.
type Metrics struct {
	reg       *prometheus.Registry
	storeTime *prometheus.HistogramVec
	storeErrs *prometheus.CounterVec
}

// NewMetrics returns a registry holding the Go runtime and process
// collectors and the store metrics; Watch* add the servers.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "store_duration_seconds",
			Help:      "Time taken by mailbox store operations (memory or Redis), by operation, failed ones included.",
			// From an in-memory call (microseconds) to the store timeout
			// (5 s) on a struggling Redis.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op"}),
		storeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "store_errors_total",
			Help:      "Mailbox store operations that failed (Redis unreachable, a timeout, a bug), by operation; refusals that concern the client (no such nameplate, crowded, ...) are not errors.",
		}, []string{"op"}),
	}
	for _, op := range storeOps {
		m.storeTime.WithLabelValues(op)
		m.storeErrs.WithLabelValues(op)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.storeTime, m.storeErrs,
	)
	return m
}

// Handler serves the registry in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Metrics HTTP server timeouts: a scrape is one small request, and the
// listener may face the internet if an operator puts it there.
const (
	metricsReadTimeout  = 10 * time.Second
	metricsWriteTimeout = 30 * time.Second
	metricsStopTimeout  = 5 * time.Second
)

// Serve serves /metrics (and nothing else: 404) on ln until ctx is done,
// then stops within a few seconds. It closes ln and returns nil when
// stopped by ctx, and otherwise the error that stopped it.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), metricsStopTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// WatchServer exports s's Stats at every scrape.
func (m *Metrics) WatchServer(s *mailbox.Server) {
	m.reg.MustRegister(&statsCollector{descs: serverDescs, collect: func(e emitter) { collectServer(e, s.Stats()) }})
}

// WatchRelay exports r's Stats at every scrape.
func (m *Metrics) WatchRelay(r *transport.RelayServer) {
	m.reg.MustRegister(&statsCollector{descs: relayDescs, collect: func(e emitter) { collectRelay(e, r.Stats()) }})
}

// statsCollector exports, at each scrape, the counters a server keeps
// itself: collect reads them once and emits one metric per desc (and
// label value).
type statsCollector struct {
	descs   []*prometheus.Desc
	collect func(emitter)
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) { c.collect(emitter{ch}) }

// emitter sends const metrics to a scrape.
type emitter struct{ ch chan<- prometheus.Metric }

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(d *prometheus.Desc, v int) {
	e.ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

// The mailbox server's metrics; the definitions of a pairing and its
// outcomes are those of mailbox.ServerStats (discovery/mailbox/stats.go).
var (
	pairingsStartedDesc = desc("pairings_started_total",
		"Pairings started on this server: nameplates (codes) allocated. A pairing is counted, start and outcome, by the connection that allocated its nameplate only, so once even when its two sides are on different servers.")
	pairingsCompletedDesc = desc("pairings_completed_total",
		"Pairings whose allocating side closed its mailbox happy (the transfer was set up).")
	pairingsFailedDesc = desc("pairings_failed_total",
		"Pairings that did not complete, by reason: the allocating side's mood (lonely: nobody came; scary: a wrong code; errory: something else), expired (no second side before the nameplate's TTL), disconnected (the allocating connection ended without closing), server_stopped (it ended because this server stopped or drained).",
		"reason")
	meetsDesc = desc("meets_total",
		"Meets: sides that paired before and met again without a code (after a network change); not pairings.")
	connectionsDesc = desc("mailbox_connections",
		"Mailbox client connections to this server now.")
	mailboxesDesc = desc("mailboxes_open",
		"Mailboxes that a connection to this server has claimed and not closed. With a shared store (Redis) each server counts the mailboxes of its own connections: one whose sides are on two servers counts on both.")
	nameplatesDesc = desc("nameplates_in_use",
		"Nameplates that a connection to this server holds (allocated, claimed or met, and not yet released or closed). With a shared store (Redis) each server counts its own connections' nameplates.")
	rateLimitedDesc = desc("rate_limited_total",
		"Mailbox requests refused by a limit: requests (a connection's request rate) or nameplates_per_ip (open nameplates per client address).",
		"limit")
	stunAnswersDesc = desc("stun_answers_total",
		"STUN Binding requests answered.")
	stunRefusedDesc = desc("stun_refused_total",
		"STUN Binding requests dropped because their source (an IPv4 address, an IPv6 /64) was over its answer budget.")
)

var serverDescs = []*prometheus.Desc{pairingsStartedDesc, pairingsCompletedDesc, pairingsFailedDesc,
	meetsDesc, connectionsDesc, mailboxesDesc, nameplatesDesc, rateLimitedDesc, stunAnswersDesc, stunRefusedDesc}

func collectServer(e emitter, st mailbox.ServerStats) {
	e.counter(pairingsStartedDesc, st.PairingsStarted)
	e.counter(pairingsCompletedDesc, st.PairingsCompleted)
	for reason, n := range st.PairingsFailed {
		e.counter(pairingsFailedDesc, n, reason)
	}
	e.counter(meetsDesc, st.Meets)
	e.gauge(connectionsDesc, st.Connections)
	e.gauge(mailboxesDesc, st.Mailboxes)
	e.gauge(nameplatesDesc, st.Nameplates)
	for limit, n := range st.RateLimited {
		e.counter(rateLimitedDesc, n, limit)
	}
	e.counter(stunAnswersDesc, st.STUNAnswered)
	e.counter(stunRefusedDesc, st.STUNRefused)
}

// The relay's metrics.
var (
	relayActiveDesc = desc("relay_sessions_active",
		"Relay sessions now, waiting for their second side or paired.")
	relayTotalDesc = desc("relay_sessions_total",
		"Relay sessions opened (a first side accepted; a side that joins again after a network change opens a new one).")
	relayPairedDesc = desc("relay_sessions_paired_total",
		"Relay sessions whose second side arrived.")
	relayRefusedDesc = desc("relay_refused_total",
		"Relay hellos refused, by reason: busy (the relay is full, or draining), too_many_from_addr (per-address limit), bad_hello, disabled (--no-relay), timeout (no partner in time).",
		"reason")
	relayBytesDesc = desc("relay_bytes_total",
		"Datagram bytes relayed, both directions, without framing.")
)

// relayReasons names the relay's refusals in labels (RelayStatus.String
// is a sentence, for people).
var relayReasons = map[transport.RelayStatus]string{
	transport.RelayBusy:            "busy",
	transport.RelayTooManyFromAddr: "too_many_from_addr",
	transport.RelayBadHello:        "bad_hello",
	transport.RelayDisabled:        "disabled",
	transport.RelayTimeout:         "timeout",
}

var relayDescs = []*prometheus.Desc{relayActiveDesc, relayTotalDesc, relayPairedDesc, relayRefusedDesc, relayBytesDesc}

func collectRelay(e emitter, st transport.RelayStats) {
	e.gauge(relayActiveDesc, st.Active)
	e.counter(relayTotalDesc, st.Total)
	e.counter(relayPairedDesc, st.Paired)
	e.counter(relayBytesDesc, st.Bytes)
	other := uint64(0)
	for status, n := range st.Refused {
		if _, ok := relayReasons[status]; !ok {
			other += n
		}
	}
	for status, reason := range relayReasons {
		e.counter(relayRefusedDesc, st.Refused[status], reason)
	}
	if other > 0 {
		e.counter(relayRefusedDesc, other, "other")
	}
}
