// Generates otlp-gateway.json (the Grafana dashboard) from the panel list
// below:   node infra/grafana/build-dashboard.mjs
// infra/check.sh fails when the committed JSON differs from what this makes,
// and runs every panel's queries against a Prometheus scraping a live gateway
// (infra/tools/dashboard-check.mjs, whose MAY_BE_EMPTY names the panels that
// legitimately have no series there).
import fs from 'node:fs';
import path from 'node:path';

const R = '$__rate_interval';
const rate = (m, by, sel = '') => `sum by (${by}) (rate(${m}{instance=~"$instance"${sel}}[${R}]))`;
const q99 = (m, by) => `histogram_quantile(0.99, sum by (le, ${by}) (rate(${m}_bucket{instance=~"$instance"}[${R}])))`;
const g = (m, by) => `sum by (${by}) (${m}{instance=~"$instance"})`;

const rows = [
  ['Ingest', [
    ['Accepted items/s by signal', 'short', [[rate('otlp_gateway_received_spans_total', 'transport'), 'spans {{transport}}'], [rate('otlp_gateway_received_metric_points_total', 'transport'), 'points {{transport}}'], [rate('otlp_gateway_received_log_records_total', 'transport'), 'logs {{transport}}']]],
    ['Refused items/s by reason', 'short', [[rate('otlp_gateway_refused_spans_total', 'reason'), 'spans {{reason}}'], [rate('otlp_gateway_refused_metric_points_total', 'reason'), 'points {{reason}}'], [rate('otlp_gateway_refused_log_records_total', 'reason'), 'logs {{reason}}']]],
    ['Requests/s by answer', 'reqps', [[rate('otlp_gateway_requests_total', 'code'), '{{code}}']]],
    ['Request latency p99', 's', [[q99('otlp_gateway_request_duration_seconds', 'signal, transport'), '{{signal}} {{transport}}']]],
    ['Authenticated requests/s by tenant', 'reqps', [[rate('otlp_gateway_auth_success_total', 'tenant, method', ',tenant=~"$tenant"'), '{{tenant}} ({{method}})']]],
    ['Throttled requests/s by tenant', 'reqps', [[rate('otlp_gateway_tenant_throttled_total', 'tenant', ',tenant=~"$tenant"'), '{{tenant}}']]],
    ['Accepted items/s by tenant', 'short', [[rate('otlp_gateway_tenant_items_total', 'tenant, signal', ',tenant=~"$tenant"'), '{{tenant}} {{signal}}']]],
    ['Refused items/s by tenant and reason', 'short', [[rate('otlp_gateway_tenant_refused_items_total', 'tenant, reason', ',tenant=~"$tenant"'), '{{tenant}} {{reason}}']]],
    ['Pipeline items/s', 'short', [[rate('otlp_gateway_pipeline_items_total', 'pipeline, signal'), '{{pipeline}} {{signal}}'], [rate('otlp_gateway_unrouted_items_total', 'signal'), 'unrouted {{signal}}']]],
  ]],
  ['Authentication', [
    ['Auth failures/s by reason', 'reqps', [[rate('otlp_gateway_auth_failure_total', 'reason'), '{{reason}}']]],
    ['Auth failures/s by tenant', 'reqps', [[rate('otlp_gateway_auth_failure_total', 'tenant', ',tenant=~"$tenant"'), '{{tenant}}']]],
    ['JWKS age', 's', [[g('otlp_gateway_jwks_age_seconds', 'issuer'), '{{issuer}}']]],
    ['JWKS fetches/s by result', 'short', [[rate('otlp_gateway_jwks_refreshes_total', 'issuer, result'), '{{issuer}} {{result}}']]],
  ]],
  ['Export', [
    ['Backends up (instances reaching each)', 'short', [[g('otlp_gateway_backend_up', 'backend'), '{{backend}}']]],
    ['Export queue depth (requests)', 'short', [[g('otlp_gateway_export_queue_entries', 'backend'), '{{backend}}']]],
    ['Export queue bytes', 'bytes', [[g('otlp_gateway_export_queue_bytes', 'backend'), '{{backend}}']]],
    ['Sent items/s by backend', 'short', [[rate('otlp_gateway_export_sent_items_total', 'backend', ',backend=~"$backend"'), '{{backend}}']]],
    ['Retries/s by backend', 'short', [[rate('otlp_gateway_export_retries_total', 'backend', ',backend=~"$backend"'), '{{backend}}']]],
    ['Failed items/s by backend and reason', 'short', [[rate('otlp_gateway_export_failed_items_total', 'backend, reason', ',backend=~"$backend"'), '{{backend}} {{reason}}']]],
    ['Requests refused: queue full', 'reqps', [[rate('otlp_gateway_queue_full_total', 'signal'), '{{signal}}'], [rate('otlp_gateway_export_failures_total', 'signal'), 'failed {{signal}}']]],
    ['Export latency p99 by backend', 's', [[q99('otlp_gateway_export_duration_seconds', 'backend'), '{{backend}}']]],
  ]],
  ['Tail sampling', [
    ['Sampler decisions/s', 'short', [[rate('otlp_gateway_sampler_traces_total', 'decision, reason'), '{{decision}} ({{reason}})']]],
    ['Policy decisions/s', 'short', [[rate('otlp_gateway_sampler_policy_decisions_total', 'policy, outcome'), '{{policy}} {{outcome}}'], [rate('otlp_gateway_sampler_policy_kept_traces_total', 'policy'), 'kept by {{policy}}']]],
    ['Sampler memory', 'bytes', [[g('otlp_gateway_sampler_bytes_held', 'pipeline'), '{{pipeline}}']]],
    ['Traces held', 'short', [[g('otlp_gateway_sampler_traces_in_flight', 'pipeline'), '{{pipeline}}']]],
    ['Evictions/s (memory or trace limit)', 'short', [[`sum(rate(otlp_gateway_sampler_evictions_total{instance=~"$instance"}[${R}]))`, 'evictions']]],
    ['Late spans and export drops/s', 'short', [[rate('otlp_gateway_sampler_late_spans_total', 'decision'), 'late {{decision}}'], [rate('otlp_gateway_sampler_export_dropped_total', 'reason'), 'dropped {{reason}}']]],
    ['Decision latency p99', 's', [[`histogram_quantile(0.99, sum by (le) (rate(otlp_gateway_sampler_decision_latency_seconds_bucket{instance=~"$instance"}[${R}])))`, 'p99']]],
  ]],
  ['Cluster', [
    ['Members in the ring', 'short', [[g('otlp_gateway_cluster_members', 'instance'), '{{instance}}'], [g('otlp_gateway_cluster_draining', 'instance'), 'draining {{instance}}']]],
    ['Peers up', 'short', [[g('otlp_gateway_cluster_peer_up', 'instance, peer'), '{{instance}} -> {{peer}}']]],
    ['Forwarded spans/s by peer', 'short', [[rate('otlp_gateway_cluster_forwarded_spans_total', 'peer'), 'to {{peer}}'], [rate('otlp_gateway_cluster_received_spans_total', 'instance'), 'received by {{instance}}']]],
    ['Forward failures/s', 'short', [[rate('otlp_gateway_cluster_forward_failures_total', 'peer, reason'), '{{peer}} {{reason}}'], [rate('otlp_gateway_cluster_returned_spans_total', 'reason'), 'returned {{reason}}']]],
    ['Forward queue bytes', 'bytes', [[g('otlp_gateway_cluster_forward_queue_bytes', 'peer'), '{{peer}}']]],
    ['Fragments, handoffs, ring changes', 'short', [[`sum(increase(otlp_gateway_cluster_fragment_traces_total{instance=~"$instance"}[${R}]))`, 'fragment traces'], [`sum(increase(otlp_gateway_cluster_handoff_traces_total{instance=~"$instance"}[${R}]))`, 'handed-off traces'], [`sum(increase(otlp_gateway_cluster_ring_changes_total{instance=~"$instance"}[${R}]))`, 'ring changes']]],
    ['Forward latency p99', 's', [[q99('otlp_gateway_cluster_forward_duration_seconds', 'peer'), '{{peer}}']]],
  ]],
  ['Process', [
    ['CPU (cores)', 'short', [[`rate(process_cpu_seconds_total{instance=~"$instance"}[${R}])`, '{{instance}}']]],
    ['Resident memory', 'bytes', [[`process_resident_memory_bytes{instance=~"$instance"}`, '{{instance}}']]],
    ['Open file descriptors', 'short', [[`process_open_fds{instance=~"$instance"}`, '{{instance}}']]],
    ['Ready / up', 'short', [[`otlp_gateway_ready{instance=~"$instance"}`, 'ready {{instance}}'], [`up{instance=~"$instance"}`, 'up {{instance}}']]],
    ['Version', 'short', [[`otlp_gateway_build_info{instance=~"$instance"}`, '{{instance}} {{version}}']]],
  ]],
];

const panels = [];
let id = 1;
let y = 0;
for (const [rowTitle, ps] of rows) {
  panels.push({ id: id++, type: 'row', title: rowTitle, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y: y++ }, panels: [] });
  ps.forEach(([title, unit, targets, opts = {}], i) => {
    panels.push({
      id: id++,
      type: 'timeseries',
      title,
      datasource: { type: 'prometheus', uid: '${datasource}' },
      gridPos: { h: 8, w: 8, x: (i % 3) * 8, y: y + Math.floor(i / 3) * 8 },
      fieldConfig: { defaults: { unit, custom: { fillOpacity: 10 } }, overrides: [] },
      options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
      targets: targets.map(([expr, legendFormat], k) => ({ refId: String.fromCharCode(65 + k), expr, legendFormat, datasource: { type: 'prometheus', uid: '${datasource}' } })),
      ...opts,
    });
  });
  y += Math.ceil(ps.length / 3) * 8;
}

const variable = (name, query) => ({
  name, label: name, type: 'query', datasource: { type: 'prometheus', uid: '${datasource}' },
  query: { query, refId: name }, definition: query, includeAll: true, multi: true, allValue: '.*',
  current: { selected: true, text: ['All'], value: ['$__all'] }, refresh: 2, sort: 1,
});

const dashboard = {
  uid: 'otlp-gateway',
  title: 'OTLP Gateway',
  tags: ['otlp-gateway', 'opentelemetry'],
  timezone: 'browser',
  schemaVersion: 39,
  version: 1,
  refresh: '30s',
  time: { from: 'now-1h', to: 'now' },
  templating: {
    list: [
      { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
      variable('instance', 'label_values(otlp_gateway_build_info, instance)'),
      variable('tenant', 'label_values(otlp_gateway_auth_success_total, tenant)'),
      variable('backend', 'label_values(otlp_gateway_export_queue_entries, backend)'),
    ],
  },
  panels,
};

const out = path.join(path.dirname(new URL(import.meta.url).pathname), 'otlp-gateway.json');
const text = JSON.stringify(dashboard, null, 2) + '\n';
if (process.argv[2] === '--check') {
  if (fs.readFileSync(out, 'utf8') !== text) {
    console.error('infra/grafana/otlp-gateway.json is not what build-dashboard.mjs makes: run node infra/grafana/build-dashboard.mjs');
    process.exit(1);
  }
} else fs.writeFileSync(out, text);
