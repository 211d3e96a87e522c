//! The wire contract, checked against the descriptor we compile: names,
//! numbers and types typed in by hand from the Mesos reference (§1.5 and
//! §8 of `reference/mesos-containerizer.md`), not read from our .proto.

use prost_reflect::{Cardinality, DescriptorPool, Kind};

fn pool() -> DescriptorPool {
    DescriptorPool::decode(phobos_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

/// Asserts that `message` has exactly these (name, number, kind) fields.
fn assert_fields(message: &str, expected: &[(&str, u32, &str)]) {
    let desc = pool()
        .get_message_by_name(message)
        .unwrap_or_else(|| panic!("{message} missing"));
    for (name, number, kind) in expected {
        let field = desc
            .get_field_by_name(name)
            .unwrap_or_else(|| panic!("{message}.{name} missing"));
        assert_eq!(field.number(), *number, "{message}.{name}");
        let actual = match field.kind() {
            Kind::Double => "double".to_owned(),
            Kind::Uint32 => "uint32".to_owned(),
            Kind::Uint64 => "uint64".to_owned(),
            Kind::Int32 => "int32".to_owned(),
            Kind::Bool => "bool".to_owned(),
            Kind::String => "string".to_owned(),
            Kind::Message(m) => m.full_name().to_owned(),
            Kind::Enum(e) => e.full_name().to_owned(),
            other => format!("{other:?}"),
        };
        assert_eq!(actual, *kind, "{message}.{name}");
    }
}

#[test]
fn resource_statistics_matches_mesos() {
    let mut fields = vec![
        ("timestamp", 1, "double"),
        ("processes", 30, "uint32"),
        ("threads", 31, "uint32"),
        ("cpus_user_time_secs", 2, "double"),
        ("cpus_system_time_secs", 3, "double"),
        ("cpus_limit", 4, "double"),
        ("cpus_soft_limit", 45, "double"),
        ("cpus_nr_periods", 7, "uint32"),
        ("cpus_nr_throttled", 8, "uint32"),
        ("cpus_throttled_time_secs", 9, "double"),
        ("mem_total_bytes", 36, "uint64"),
        ("mem_total_memsw_bytes", 37, "uint64"),
        ("mem_limit_bytes", 6, "uint64"),
        ("mem_soft_limit_bytes", 38, "uint64"),
        ("mem_file_bytes", 10, "uint64"),
        ("mem_anon_bytes", 11, "uint64"),
        ("mem_cache_bytes", 39, "uint64"),
        ("mem_rss_bytes", 5, "uint64"),
        ("mem_mapped_file_bytes", 12, "uint64"),
        ("mem_swap_bytes", 40, "uint64"),
        ("mem_unevictable_bytes", 41, "uint64"),
        ("mem_low_pressure_counter", 32, "uint64"),
        ("mem_medium_pressure_counter", 33, "uint64"),
        ("mem_critical_pressure_counter", 34, "uint64"),
        ("disk_limit_bytes", 26, "uint64"),
        ("disk_used_bytes", 27, "uint64"),
        ("disk_statistics", 43, "mesos.DiskStatistics"),
        ("blkio_statistics", 44, "mesos.CgroupInfo.Blkio.Statistics"),
        ("perf", 13, "mesos.PerfStatistics"),
        ("net_tcp_active_connections", 28, "double"),
        ("net_tcp_time_wait_connections", 29, "double"),
        (
            "net_traffic_control_statistics",
            35,
            "mesos.TrafficControlStatistics",
        ),
    ];
    let net = [
        "net_rx_packets",
        "net_rx_bytes",
        "net_rx_errors",
        "net_rx_dropped",
        "net_tx_packets",
        "net_tx_bytes",
        "net_tx_errors",
        "net_tx_dropped",
    ];
    fields.extend(net.iter().zip(14..).map(|(n, i)| (*n, i, "uint64")));
    let rtt = [
        "net_tcp_rtt_microsecs_p50",
        "net_tcp_rtt_microsecs_p90",
        "net_tcp_rtt_microsecs_p95",
        "net_tcp_rtt_microsecs_p99",
    ];
    fields.extend(rtt.iter().zip(22..).map(|(n, i)| (*n, i, "double")));
    assert_fields("mesos.ResourceStatistics", &fields);

    let desc = pool()
        .get_message_by_name("mesos.ResourceStatistics")
        .unwrap();
    // Everything of §8 except net_snmp_statistics (42), which is
    // deliberately not modelled.
    assert_eq!(desc.fields().len(), fields.len());
    assert!(desc.get_field(42).is_none());
    let timestamp = desc.get_field_by_name("timestamp").unwrap();
    assert_eq!(timestamp.cardinality(), Cardinality::Required);
}

#[test]
fn perf_statistics_matches_mesos() {
    // Mesos's mesos.proto `PerfStatistics`: the two required doubles, then
    // one field per `perf list` event, numbered in this order from 3.
    let mut fields = vec![("timestamp", 1, "double"), ("duration", 2, "double")];
    let events = [
        "cycles",
        "stalled_cycles_frontend",
        "stalled_cycles_backend",
        "instructions",
        "cache_references",
        "cache_misses",
        "branches",
        "branch_misses",
        "bus_cycles",
        "ref_cycles",
        "cpu_clock",
        "task_clock",
        "page_faults",
        "minor_faults",
        "major_faults",
        "context_switches",
        "cpu_migrations",
        "alignment_faults",
        "emulation_faults",
        "l1_dcache_loads",
        "l1_dcache_load_misses",
        "l1_dcache_stores",
        "l1_dcache_store_misses",
        "l1_dcache_prefetches",
        "l1_dcache_prefetch_misses",
        "l1_icache_loads",
        "l1_icache_load_misses",
        "l1_icache_prefetches",
        "l1_icache_prefetch_misses",
        "llc_loads",
        "llc_load_misses",
        "llc_stores",
        "llc_store_misses",
        "llc_prefetches",
        "llc_prefetch_misses",
        "dtlb_loads",
        "dtlb_load_misses",
        "dtlb_stores",
        "dtlb_store_misses",
        "dtlb_prefetches",
        "dtlb_prefetch_misses",
        "itlb_loads",
        "itlb_load_misses",
        "branch_loads",
        "branch_load_misses",
        "node_loads",
        "node_load_misses",
        "node_stores",
        "node_store_misses",
        "node_prefetches",
        "node_prefetch_misses",
    ];
    fields.extend(events.iter().zip(3..).map(|(n, i)| {
        let kind = if n.ends_with("_clock") {
            "double"
        } else {
            "uint64"
        };
        (*n, i, kind)
    }));
    assert_fields("mesos.PerfStatistics", &fields);
    let desc = pool().get_message_by_name("mesos.PerfStatistics").unwrap();
    assert_eq!(desc.fields().len(), 53);
    for name in ["timestamp", "duration"] {
        let field = desc.get_field_by_name(name).unwrap();
        assert_eq!(field.cardinality(), Cardinality::Required, "{name}");
    }
}

#[test]
fn ecp_messages_match_mesos() {
    let cid = "mesos.ContainerID";
    assert_fields(
        "mesos.containerizer.Launch",
        &[
            ("container_id", 1, cid),
            ("task_info", 2, "mesos.TaskInfo"),
            ("executor_info", 3, "mesos.ExecutorInfo"),
            ("directory", 4, "string"),
            ("user", 5, "string"),
            ("slave_id", 6, "mesos.SlaveID"),
            ("slave_pid", 7, "string"),
            ("checkpoint", 8, "bool"),
        ],
    );
    assert_fields(
        "mesos.containerizer.Update",
        &[("container_id", 1, cid), ("resources", 2, "mesos.Resource")],
    );
    for m in ["Wait", "Destroy", "Usage"] {
        assert_fields(
            &format!("mesos.containerizer.{m}"),
            &[("container_id", 1, cid)],
        );
    }
    assert_fields("mesos.containerizer.Containers", &[("containers", 1, cid)]);
    assert_fields(
        "mesos.containerizer.Termination",
        &[
            ("status", 3, "int32"),
            ("state", 4, "mesos.TaskState"),
            ("reasons", 5, "mesos.TaskStatus.Reason"),
            ("message", 2, "string"),
        ],
    );
    assert_fields(
        "mesos.containerizer.TerminationV019",
        &[
            ("killed", 1, "bool"),
            ("message", 2, "string"),
            ("status", 3, "int32"),
        ],
    );
    assert_fields(cid, &[("value", 1, "string"), ("parent", 2, cid)]);
}

#[test]
fn reasons_and_states_have_mesos_numbers() {
    let pool = pool();
    let reason = pool.get_enum_by_name("mesos.TaskStatus.Reason").unwrap();
    for (name, number) in [
        ("REASON_COMMAND_EXECUTOR_FAILED", 0),
        ("REASON_EXECUTOR_TERMINATED", 1),
        ("REASON_CONTAINER_LIMITATION_MEMORY", 8),
        ("REASON_CONTAINER_LIMITATION", 19),
        ("REASON_CONTAINER_LIMITATION_DISK", 20),
        ("REASON_CONTAINER_LAUNCH_FAILED", 21),
        ("REASON_CONTAINER_UPDATE_FAILED", 22),
    ] {
        assert_eq!(
            reason.get_value_by_name(name).unwrap().number(),
            number,
            "{name}"
        );
    }
    let state = pool.get_enum_by_name("mesos.TaskState").unwrap();
    for (name, number) in [
        ("TASK_STARTING", 0),
        ("TASK_RUNNING", 1),
        ("TASK_FINISHED", 2),
        ("TASK_FAILED", 3),
        ("TASK_KILLED", 4),
        ("TASK_LOST", 5),
        ("TASK_STAGING", 6),
        ("TASK_ERROR", 7),
        ("TASK_KILLING", 8),
    ] {
        assert_eq!(
            state.get_value_by_name(name).unwrap().number(),
            number,
            "{name}"
        );
    }
}

/// agent.proto's container calls (reference §7.1, §7.3).
#[test]
fn agent_api_messages_match_mesos() {
    let c = "mesos.v1.agent.Call";
    assert_fields(
        c,
        &[
            ("type", 1, "mesos.v1.agent.Call.Type"),
            (
                "launch_nested_container",
                6,
                "mesos.v1.agent.Call.LaunchNestedContainer",
            ),
            (
                "wait_nested_container",
                7,
                "mesos.v1.agent.Call.WaitNestedContainer",
            ),
            (
                "kill_nested_container",
                8,
                "mesos.v1.agent.Call.KillNestedContainer",
            ),
            (
                "launch_nested_container_session",
                9,
                "mesos.v1.agent.Call.LaunchNestedContainerSession",
            ),
            (
                "attach_container_input",
                10,
                "mesos.v1.agent.Call.AttachContainerInput",
            ),
            (
                "attach_container_output",
                11,
                "mesos.v1.agent.Call.AttachContainerOutput",
            ),
            (
                "remove_nested_container",
                12,
                "mesos.v1.agent.Call.RemoveNestedContainer",
            ),
            (
                "launch_container",
                13,
                "mesos.v1.agent.Call.LaunchContainer",
            ),
            ("wait_container", 14, "mesos.v1.agent.Call.WaitContainer"),
            ("kill_container", 15, "mesos.v1.agent.Call.KillContainer"),
            (
                "remove_container",
                16,
                "mesos.v1.agent.Call.RemoveContainer",
            ),
            ("get_containers", 20, "mesos.v1.agent.Call.GetContainers"),
        ],
    );
    let pool = pool();
    let types = pool.get_enum_by_name("mesos.v1.agent.Call.Type").unwrap();
    for (name, number) in [
        ("GET_CONTAINERS", 10),
        ("LAUNCH_NESTED_CONTAINER", 14),
        ("WAIT_NESTED_CONTAINER", 15),
        ("KILL_NESTED_CONTAINER", 16),
        ("LAUNCH_NESTED_CONTAINER_SESSION", 17),
        ("ATTACH_CONTAINER_INPUT", 18),
        ("ATTACH_CONTAINER_OUTPUT", 19),
        ("REMOVE_NESTED_CONTAINER", 21),
        ("LAUNCH_CONTAINER", 22),
        ("WAIT_CONTAINER", 23),
        ("KILL_CONTAINER", 24),
        ("REMOVE_CONTAINER", 25),
        ("PRUNE_IMAGES", 30),
    ] {
        assert_eq!(
            types.get_value_by_name(name).unwrap().number(),
            number,
            "{name}"
        );
    }
    assert_fields(
        "mesos.v1.agent.Call.LaunchContainer",
        &[
            ("container_id", 1, "mesos.ContainerID"),
            ("command", 2, "mesos.CommandInfo"),
            ("resources", 3, "mesos.Resource"),
            ("container", 4, "mesos.ContainerInfo"),
            (
                "limits",
                5,
                "mesos.v1.agent.Call.LaunchContainer.LimitsEntry",
            ),
        ],
    );
    assert_fields(
        "mesos.v1.agent.Call.KillContainer",
        &[
            ("container_id", 1, "mesos.ContainerID"),
            ("signal", 2, "int32"),
        ],
    );
    assert_fields(
        "mesos.v1.agent.Call.GetContainers",
        &[("show_nested", 1, "bool"), ("show_standalone", 2, "bool")],
    );
    assert_fields(
        "mesos.v1.agent.Call.AttachContainerInput",
        &[
            ("type", 1, "mesos.v1.agent.Call.AttachContainerInput.Type"),
            ("container_id", 2, "mesos.ContainerID"),
            ("process_io", 3, "mesos.v1.agent.ProcessIO"),
        ],
    );
    assert_fields(
        "mesos.v1.agent.Response",
        &[
            ("type", 1, "mesos.v1.agent.Response.Type"),
            (
                "get_containers",
                10,
                "mesos.v1.agent.Response.GetContainers",
            ),
            (
                "wait_nested_container",
                14,
                "mesos.v1.agent.Response.WaitNestedContainer",
            ),
            (
                "wait_container",
                16,
                "mesos.v1.agent.Response.WaitContainer",
            ),
        ],
    );
    let responses = pool
        .get_enum_by_name("mesos.v1.agent.Response.Type")
        .unwrap();
    for (name, number) in [
        ("GET_CONTAINERS", 9),
        ("WAIT_NESTED_CONTAINER", 13),
        ("WAIT_CONTAINER", 15),
    ] {
        assert_eq!(
            responses.get_value_by_name(name).unwrap().number(),
            number,
            "{name}"
        );
    }
    assert_fields(
        "mesos.v1.agent.Response.GetContainers.Container",
        &[
            ("framework_id", 1, "mesos.FrameworkID"),
            ("executor_id", 2, "mesos.ExecutorID"),
            ("executor_name", 3, "string"),
            ("container_id", 4, "mesos.ContainerID"),
            ("container_status", 5, "mesos.ContainerStatus"),
            ("resource_statistics", 6, "mesos.ResourceStatistics"),
        ],
    );
    assert_fields(
        "mesos.v1.agent.Response.WaitContainer",
        &[
            ("exit_status", 1, "int32"),
            ("state", 2, "mesos.TaskState"),
            ("reason", 3, "mesos.TaskStatus.Reason"),
            ("limitation", 4, "mesos.TaskResourceLimitation"),
            ("message", 5, "string"),
        ],
    );
    assert_fields(
        "mesos.v1.agent.ProcessIO",
        &[
            ("type", 1, "mesos.v1.agent.ProcessIO.Type"),
            ("data", 2, "mesos.v1.agent.ProcessIO.Data"),
            ("control", 3, "mesos.v1.agent.ProcessIO.Control"),
        ],
    );
    assert_fields(
        "mesos.v1.agent.ProcessIO.Control",
        &[
            ("type", 1, "mesos.v1.agent.ProcessIO.Control.Type"),
            ("tty_info", 2, "mesos.TTYInfo"),
            ("heartbeat", 3, "mesos.v1.agent.ProcessIO.Control.Heartbeat"),
        ],
    );
    assert_fields(
        "mesos.ContainerInfo",
        &[
            ("linux_info", 8, "mesos.LinuxInfo"),
            ("rlimit_info", 9, "mesos.RLimitInfo"),
            ("tty_info", 10, "mesos.TTYInfo"),
        ],
    );
    assert_fields(
        "mesos.LinuxInfo",
        &[
            ("share_pid_namespace", 4, "bool"),
            ("ipc_mode", 6, "mesos.LinuxInfo.IpcMode"),
            ("share_cgroups", 8, "bool"),
        ],
    );
    assert_fields(
        "mesos.TTYInfo.WindowSize",
        &[("rows", 1, "uint32"), ("columns", 2, "uint32")],
    );
}
