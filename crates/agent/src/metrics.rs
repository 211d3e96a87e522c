//! `GET /metrics` in the Prometheus text format (version 0.0.4).
//!
//! Agent series are counted as requests are served; container series are
//! read from the runtime directory and the containers' cgroups (through
//! the door) at each scrape, so they cover containers of every face.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use phobos_core::{ContainerState, Reason, ResourceStatistics};
use phobos_runtime::Summary;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What the agent counts while serving.
#[derive(Default)]
pub struct Metrics {
    /// (endpoint or call, status code) → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    connections: AtomicI64,
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, call: &str, status: u16, elapsed: Duration) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((call.to_owned(), status)).or_default() += 1;
        drop(requests);
        let secs = elapsed.as_secs_f64();
        let mut latency = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = latency.entry(call.to_owned()).or_default();
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// The agent's own series.
    pub fn render_agent(
        &self,
        out: &mut String,
        open_waits: i64,
        recovering: bool,
        zygote: Option<i32>,
    ) {
        header(
            out,
            "phobos_agent_requests_total",
            "counter",
            "API requests answered, by call (or endpoint) and status code.",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((call, code), n) in requests.iter() {
            let _ = writeln!(
                out,
                "phobos_agent_requests_total{{call=\"{}\",code=\"{code}\"}} {n}",
                escape(call)
            );
        }
        drop(requests);
        header(
            out,
            "phobos_agent_request_duration_seconds",
            "histogram",
            "Time to answer an API request (for WAIT_CONTAINER: until the container ended).",
        );
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (call, h) in latency.iter() {
            let call = escape(call);
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "phobos_agent_request_duration_seconds_bucket{{call=\"{call}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "phobos_agent_request_duration_seconds_bucket{{call=\"{call}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "phobos_agent_request_duration_seconds_sum{{call=\"{call}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "phobos_agent_request_duration_seconds_count{{call=\"{call}\"}} {}",
                h.count
            );
        }
        drop(latency);
        gauge(
            out,
            "phobos_agent_connections",
            "Open client connections.",
            self.connections.load(Ordering::Relaxed) as f64,
        );
        gauge(
            out,
            "phobos_agent_open_waits",
            "WAIT_CONTAINER requests waiting.",
            open_waits as f64,
        );
        gauge(
            out,
            "phobos_agent_recovering",
            "1 while the agent recovers its containers (API calls answer 503).",
            f64::from(u8::from(recovering)),
        );
        gauge(
            out,
            "phobos_agent_zygote_pid",
            "The pid of the pre-started init spawner the next plain launch has clone its init (0: none ready).",
            f64::from(zygote.unwrap_or(0)),
        );
    }
}

/// The container series: every container's state, and the statistics and
/// limits of running ones.
pub fn render_containers(
    out: &mut String,
    containers: &[Summary],
    stats: &BTreeMap<String, ResourceStatistics>,
) {
    let live = containers
        .iter()
        .filter(|c| c.state() != ContainerState::Terminated)
        .count();
    gauge(
        out,
        "phobos_agent_live_containers",
        "Containers not yet terminated (of every face).",
        live as f64,
    );
    header(
        out,
        "phobos_container_state",
        "gauge",
        "1 for the container's current state.",
    );
    for c in containers {
        let state = serde_json::to_value(c.state())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", c.state()));
        let _ = writeln!(
            out,
            "phobos_container_state{{container_id=\"{}\",state=\"{}\"}} 1",
            escape(c.id().as_str()),
            escape(&state)
        );
    }
    header(
        out,
        "phobos_container_oom_kills_total",
        "counter",
        "Times the container was ended by its memory limit (the OOM killer).",
    );
    for c in containers {
        let oom = c.termination().is_some_and(|t| {
            t.reason == Some(Reason::ContainerLimitationMemory)
                || t.limited_resources.iter().any(|r| r == "mem")
        });
        let _ = writeln!(
            out,
            "phobos_container_oom_kills_total{{container_id=\"{}\"}} {}",
            escape(c.id().as_str()),
            u8::from(oom)
        );
    }
    let series: [Series; 5] = [
        (
            "phobos_container_cpu_user_seconds_total",
            "counter",
            "CPU time in user mode.",
            |s| s.cpus_user_time_secs,
        ),
        (
            "phobos_container_cpu_system_seconds_total",
            "counter",
            "CPU time in kernel mode.",
            |s| s.cpus_system_time_secs,
        ),
        (
            "phobos_container_memory_bytes",
            "gauge",
            "Memory in use (the cgroup's usage, else the resident set).",
            |s| s.mem_total_bytes.or(s.mem_rss_bytes).map(|v| v as f64),
        ),
        (
            "phobos_container_cpu_limit",
            "gauge",
            "CPU limit (CPUs).",
            |s| s.cpus_limit,
        ),
        (
            "phobos_container_memory_limit_bytes",
            "gauge",
            "Memory hard limit.",
            |s| s.mem_limit_bytes.map(|v| v as f64),
        ),
    ];
    for (name, kind, help, get) in series {
        header(out, name, kind, help);
        for (id, s) in stats {
            if let Some(v) = get(s) {
                let _ = writeln!(out, "{name}{{container_id=\"{}\"}} {v}", escape(id));
            }
        }
    }
}

/// A per-container series: name, type, help, and its value.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ResourceStatistics) -> Option<f64>,
);

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_latencies_are_counted() {
        let m = Metrics::default();
        m.observe("WAIT_CONTAINER", 200, Duration::from_millis(3));
        m.observe("WAIT_CONTAINER", 200, Duration::from_secs(2));
        let mut out = String::new();
        m.render_agent(&mut out, 7, false, Some(42));
        assert!(
            out.contains("phobos_agent_requests_total{call=\"WAIT_CONTAINER\",code=\"200\"} 2")
        );
        assert!(out.contains(
            "phobos_agent_request_duration_seconds_bucket{call=\"WAIT_CONTAINER\",le=\"0.005\"} 1"
        ));
        assert!(
            out.contains("phobos_agent_request_duration_seconds_count{call=\"WAIT_CONTAINER\"} 2")
        );
        assert!(out.contains("phobos_agent_open_waits 7"));
        assert!(out.contains("phobos_agent_zygote_pid 42"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
