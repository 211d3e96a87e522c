//! The perf events Mesos's `cgroups/perf_event` isolator samples
//! (`--perf_events`), by the names `perf list` gives them, and Mesos's
//! `PerfStatistics`: each event's count under its field name (the event
//! name lowercased, `-` as `_`; `cpu-clock` and `task-clock` in
//! milliseconds, as `perf stat` prints them). The kernel encoding of each
//! event (`perf_event_attr.type` and `.config`, perf_event_open(2)) is
//! here too, so that a configuration naming an unknown event is refused
//! before any container is launched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `PERF_TYPE_HARDWARE`.
pub const TYPE_HARDWARE: u32 = 0;
/// `PERF_TYPE_SOFTWARE`.
pub const TYPE_SOFTWARE: u32 = 1;
/// `PERF_TYPE_HW_CACHE`.
pub const TYPE_HW_CACHE: u32 = 3;

/// One event Phobos can count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerfEvent {
    /// The name `perf list` gives it.
    pub name: &'static str,
    /// `perf_event_attr.type`.
    pub kind: u32,
    /// `perf_event_attr.config`.
    pub config: u64,
}

impl PerfEvent {
    /// Mesos's `PerfStatistics` field.
    pub fn field(&self) -> String {
        self.name.to_ascii_lowercase().replace('-', "_")
    }

    /// Whether its count is a time in nanoseconds (`cpu-clock`,
    /// `task-clock`), reported in milliseconds.
    pub fn is_clock(&self) -> bool {
        self.kind == TYPE_SOFTWARE && self.config <= 1
    }
}

const fn hw(name: &'static str, config: u64) -> PerfEvent {
    PerfEvent {
        name,
        kind: TYPE_HARDWARE,
        config,
    }
}

const fn sw(name: &'static str, config: u64) -> PerfEvent {
    PerfEvent {
        name,
        kind: TYPE_SOFTWARE,
        config,
    }
}

/// A hardware cache event: cache, operation (0 read, 1 write, 2
/// prefetch), result (0 access, 1 miss).
const fn cache(name: &'static str, cache: u64, op: u64, miss: u64) -> PerfEvent {
    PerfEvent {
        name,
        kind: TYPE_HW_CACHE,
        config: cache | (op << 8) | (miss << 16),
    }
}

/// Every event of Mesos's `PerfStatistics`, in its field order.
pub const EVENTS: &[PerfEvent] = &[
    hw("cycles", 0),
    hw("stalled-cycles-frontend", 7),
    hw("stalled-cycles-backend", 8),
    hw("instructions", 1),
    hw("cache-references", 2),
    hw("cache-misses", 3),
    hw("branches", 4),
    hw("branch-misses", 5),
    hw("bus-cycles", 6),
    hw("ref-cycles", 9),
    sw("cpu-clock", 0),
    sw("task-clock", 1),
    sw("page-faults", 2),
    sw("minor-faults", 5),
    sw("major-faults", 6),
    sw("context-switches", 3),
    sw("cpu-migrations", 4),
    sw("alignment-faults", 7),
    sw("emulation-faults", 8),
    cache("L1-dcache-loads", 0, 0, 0),
    cache("L1-dcache-load-misses", 0, 0, 1),
    cache("L1-dcache-stores", 0, 1, 0),
    cache("L1-dcache-store-misses", 0, 1, 1),
    cache("L1-dcache-prefetches", 0, 2, 0),
    cache("L1-dcache-prefetch-misses", 0, 2, 1),
    cache("L1-icache-loads", 1, 0, 0),
    cache("L1-icache-load-misses", 1, 0, 1),
    cache("L1-icache-prefetches", 1, 2, 0),
    cache("L1-icache-prefetch-misses", 1, 2, 1),
    cache("LLC-loads", 2, 0, 0),
    cache("LLC-load-misses", 2, 0, 1),
    cache("LLC-stores", 2, 1, 0),
    cache("LLC-store-misses", 2, 1, 1),
    cache("LLC-prefetches", 2, 2, 0),
    cache("LLC-prefetch-misses", 2, 2, 1),
    cache("dTLB-loads", 3, 0, 0),
    cache("dTLB-load-misses", 3, 0, 1),
    cache("dTLB-stores", 3, 1, 0),
    cache("dTLB-store-misses", 3, 1, 1),
    cache("dTLB-prefetches", 3, 2, 0),
    cache("dTLB-prefetch-misses", 3, 2, 1),
    cache("iTLB-loads", 4, 0, 0),
    cache("iTLB-load-misses", 4, 0, 1),
    cache("branch-loads", 5, 0, 0),
    cache("branch-load-misses", 5, 0, 1),
    cache("node-loads", 6, 0, 0),
    cache("node-load-misses", 6, 0, 1),
    cache("node-stores", 6, 1, 0),
    cache("node-store-misses", 6, 1, 1),
    cache("node-prefetches", 6, 2, 0),
    cache("node-prefetch-misses", 6, 2, 1),
];

/// Other names `perf` accepts for the same events (it reports them under
/// the main name, and so does Mesos).
const ALIASES: &[(&str, &str)] = &[
    ("cpu-cycles", "cycles"),
    ("idle-cycles-frontend", "stalled-cycles-frontend"),
    ("idle-cycles-backend", "stalled-cycles-backend"),
    ("branch-instructions", "branches"),
    ("faults", "page-faults"),
    ("cs", "context-switches"),
    ("migrations", "cpu-migrations"),
];

/// The event called `name` (case as `perf list` spells it, or all lower
/// case), or an error line listing the known names.
pub fn event(name: &str) -> Result<PerfEvent, String> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, main)| main);
    EVENTS
        .iter()
        .find(|e| e.name == name || e.name.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = EVENTS.iter().map(|e| e.name).collect();
            format!(
                "unknown perf event {name:?}: expected one of {}",
                known.join(", ")
            )
        })
}

/// A counter's value: a count, or milliseconds for the clocks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerfValue {
    Count(u64),
    Millis(f64),
}

/// Mesos `PerfStatistics`: one sample of the container's perf_event cgroup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfStatistics {
    /// Start of the sample, seconds since the epoch.
    pub timestamp: f64,
    /// Its length in seconds.
    pub duration: f64,
    /// Each sampled event under its Mesos field name.
    #[serde(flatten)]
    pub counters: BTreeMap<String, PerfValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fields_and_aliases_are_mesos_and_perf_ones() {
        assert_eq!(event("task-clock").unwrap().field(), "task_clock");
        assert!(event("task-clock").unwrap().is_clock());
        assert!(!event("page-faults").unwrap().is_clock());
        assert_eq!(event("L1-dcache-loads").unwrap().field(), "l1_dcache_loads");
        assert_eq!(event("llc-load-misses").unwrap().field(), "llc_load_misses");
        assert_eq!(event("cpu-cycles").unwrap(), event("cycles").unwrap());
        assert_eq!(event("LLC-load-misses").unwrap().config, 2 | (1 << 16));
        assert_eq!(EVENTS.len(), 51, "every PerfStatistics counter field");
        let e = event("cycels").unwrap_err();
        assert!(e.contains("\"cycels\"") && e.contains("task-clock"), "{e}");
    }

    #[test]
    fn statistics_serialize_flat_with_counts_and_milliseconds() {
        let mut s = PerfStatistics {
            timestamp: 1.5,
            duration: 0.25,
            ..Default::default()
        };
        s.counters.insert("cycles".into(), PerfValue::Count(7));
        s.counters
            .insert("task_clock".into(), PerfValue::Millis(12.5));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"timestamp": 1.5, "duration": 0.25, "cycles": 7, "task_clock": 12.5})
        );
    }
}
