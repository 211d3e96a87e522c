//! Byte-exact ECP fixtures.
//!
//! `fixtures/ecp_frames.txt` was produced by `fixtures/gen_fixtures.py`, which
//! serializes the same messages with Google's Python protobuf runtime and
//! frames them with `struct.pack("<I", len)` (x86 is little-endian, so this
//! equals the host order the ECP uses). Nothing in it comes from phobos'
//! code. Each test checks both directions: our writer produces exactly those
//! bytes, and our reader turns those bytes back into the same message.

use phobos_proto::containerizer::{
    Containers, Destroy, Launch, Termination, TerminationV019, Update, Usage, Wait,
};
use phobos_proto::ecp::{encode_frame, read_message, write_message};
use phobos_proto::mesos::cgroup_info::blkio;
use phobos_proto::mesos::container_info::{self, DockerInfo, docker_info};
use phobos_proto::mesos::{
    CommandInfo, ContainerId, ContainerInfo, DiskStatistics, DurationInfo, Environment, ExecutorId,
    ExecutorInfo, FrameworkId, KillPolicy, Resource, ResourceStatistics, SlaveId, TaskId, TaskInfo,
    TaskState, Value, command_info, device, environment, resource, task_status, value,
};

const FRAMES: &str = include_str!("fixtures/ecp_frames.txt");

fn fixture(name: &str) -> Vec<u8> {
    let line = FRAMES
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no fixture named {name}"));
    (0..line.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}

/// Writes `msg`, compares with the fixture, and reads the fixture back.
fn check<M>(name: &str, msg: &M)
where
    M: prost::Message + prost::Name + Default + PartialEq + std::fmt::Debug,
{
    let expected = fixture(name);
    let mut written = Vec::new();
    write_message(&mut written, msg).expect("write");
    assert_eq!(
        hex(&written),
        hex(&expected),
        "{name}: written bytes differ"
    );
    assert_eq!(encode_frame(msg).expect("encode"), expected);

    let mut input = expected.as_slice();
    let read: M = read_message(&mut input).expect("read");
    assert_eq!(&read, msg, "{name}: read message differs");
    assert!(input.is_empty(), "{name}: reader left bytes behind");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cid(value: &str) -> ContainerId {
    ContainerId {
        value: value.into(),
        parent: None,
    }
}

fn resources() -> Vec<Resource> {
    let scalar = |name: &str, v: f64| Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        ..Default::default()
    };
    vec![
        scalar("cpus", 0.5),
        scalar("mem", 128.0),
        Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges {
                range: vec![value::Range {
                    begin: 31000,
                    end: 31001,
                }],
            }),
            ..Default::default()
        },
    ]
}

#[test]
fn launch() {
    let task = TaskInfo {
        name: "sleepy".into(),
        task_id: TaskId {
            value: "task-1".into(),
        },
        slave_id: SlaveId { value: "S0".into() },
        resources: resources(),
        command: Some(CommandInfo {
            value: Some("sleep 10".into()),
            shell: Some(true),
            ..Default::default()
        }),
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: 3_000_000_000,
            }),
        }),
        container: Some(ContainerInfo {
            r#type: container_info::Type::Docker as i32,
            docker: Some(DockerInfo {
                image: "busybox".into(),
                network: Some(docker_info::Network::Bridge as i32),
                port_mappings: vec![docker_info::PortMapping {
                    host_port: 31000,
                    container_port: 80,
                    protocol: Some("tcp".into()),
                }],
                parameters: vec![phobos_proto::mesos::Parameter {
                    key: "label".into(),
                    value: "a=b".into(),
                }],
                privileged: Some(false),
                force_pull_image: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let executor = ExecutorInfo {
        executor_id: ExecutorId {
            value: "exec-1".into(),
        },
        framework_id: Some(FrameworkId {
            value: "fw-1".into(),
        }),
        command: CommandInfo {
            uris: vec![command_info::Uri {
                value: "http://example.invalid/a.tgz".into(),
                extract: Some(true),
                ..Default::default()
            }],
            environment: Some(Environment {
                variables: vec![environment::Variable {
                    name: "PORT0".into(),
                    value: "31000".into(),
                }],
            }),
            value: Some("/usr/libexec/mesos/mesos-executor".into()),
            arguments: vec!["mesos-executor".into(), "--help".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let launch = Launch {
        container_id: cid("c0ffee"),
        task_info: Some(task),
        executor_info: Some(executor),
        directory: Some("/var/lib/mesos/slaves/S0/sandbox".into()),
        user: Some("nobody".into()),
        slave_id: Some(SlaveId { value: "S0".into() }),
        slave_pid: Some("slave(1)@127.0.0.1:5051".into()),
        checkpoint: Some(true),
    };
    check("launch", &launch);
}

#[test]
fn update() {
    check(
        "update",
        &Update {
            container_id: cid("c0ffee"),
            resources: resources(),
        },
    );
}

#[test]
fn wait_with_nested_container_id() {
    let id = ContainerId {
        value: "child".into(),
        parent: Some(Box::new(cid("root"))),
    };
    check("wait", &Wait { container_id: id });
}

#[test]
fn destroy_and_usage() {
    check(
        "destroy",
        &Destroy {
            container_id: cid("c0ffee"),
        },
    );
    check(
        "usage",
        &Usage {
            container_id: cid("c0ffee"),
        },
    );
}

#[test]
fn containers() {
    check(
        "containers",
        &Containers {
            containers: vec![cid("a"), cid("b")],
        },
    );
    check("containers_empty", &Containers::default());
}

#[test]
fn termination_0_26() {
    let term = Termination {
        status: Some(9),
        state: Some(TaskState::TaskFailed as i32),
        reasons: vec![
            task_status::Reason::ContainerLimitationMemory as i32,
            task_status::Reason::ExecutorTerminated as i32,
        ],
        message: Some("Memory limit exceeded".into()),
    };
    check("termination", &term);
}

#[test]
fn termination_0_19() {
    check(
        "termination_v019",
        &TerminationV019 {
            killed: true,
            message: "oom".into(),
            status: Some(9),
        },
    );
    // Required fields are written even when they hold their default.
    check(
        "termination_v019_clean",
        &TerminationV019 {
            killed: false,
            message: String::new(),
            status: Some(64 << 8),
        },
    );
}

#[test]
fn resource_statistics() {
    let stats = ResourceStatistics {
        timestamp: 1_700_000_000.25,
        processes: Some(3),
        cpus_user_time_secs: Some(0.12),
        cpus_system_time_secs: Some(0.05),
        cpus_limit: Some(0.5),
        cpus_soft_limit: Some(0.25),
        mem_rss_bytes: Some(1 << 20),
        mem_limit_bytes: Some(128 << 20),
        mem_total_bytes: Some((1 << 40) + 1),
        disk_used_bytes: Some(4096),
        disk_statistics: vec![DiskStatistics {
            persistence: Some(resource::disk_info::Persistence {
                id: "vol".into(),
                principal: None,
            }),
            limit_bytes: Some(10),
            used_bytes: Some(5),
            ..Default::default()
        }],
        blkio_statistics: Some(blkio::Statistics {
            throttling: vec![blkio::throttling::Statistics {
                device: Some(device::Number {
                    major_number: 8,
                    minor_number: 0,
                }),
                io_serviced: vec![blkio::Value {
                    op: Some(blkio::Operation::Total as i32),
                    value: Some(42),
                }],
                io_service_bytes: vec![],
            }],
            ..Default::default()
        }),
        net_rx_bytes: Some(7),
        ..Default::default()
    };
    check("resource_statistics", &stats);
}

#[test]
fn value_message_is_reachable() {
    // `Value` is re-exported alongside its nested types.
    let v = Value {
        r#type: value::Type::Text as i32,
        text: Some(value::Text { value: "x".into() }),
        ..Default::default()
    };
    assert_eq!(v.r#type(), value::Type::Text);
}
