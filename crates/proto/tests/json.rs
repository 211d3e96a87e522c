//! The Mesos JSON mapping: snake_case names, 64-bit integers as numbers,
//! enums by name. Expected texts are written by hand from Mesos's format
//! (e.g. the `resource_statistics` body in the v1 API docs).

use phobos_proto::containerizer::Termination;
use phobos_proto::json::{JsonError, from_json_str, to_json_string, to_json_value};
use phobos_proto::mesos::{ContainerId, ResourceStatistics, TaskState, task_status};
use serde_json::json;

#[test]
fn container_id_with_parent() {
    let id = ContainerId {
        value: "child".into(),
        parent: Some(Box::new(ContainerId {
            value: "root".into(),
            parent: None,
        })),
    };
    assert_eq!(
        to_json_value(&id).unwrap(),
        json!({"value": "child", "parent": {"value": "root"}})
    );
    let text = r#"{"value":"child","parent":{"value":"root"}}"#;
    assert_eq!(to_json_string(&id).unwrap(), text);
    assert_eq!(from_json_str::<ContainerId>(text).unwrap(), id);
}

#[test]
fn resource_statistics_uses_numbers_and_snake_case() {
    let stats = ResourceStatistics {
        timestamp: 1_700_000_000.5,
        cpus_user_time_secs: Some(0.25),
        mem_limit_bytes: Some(2048),
        mem_total_bytes: Some(u64::MAX),
        cpus_nr_periods: Some(7),
        ..Default::default()
    };
    let value = to_json_value(&stats).unwrap();
    assert_eq!(
        value,
        json!({
            "timestamp": 1_700_000_000.5,
            "cpus_user_time_secs": 0.25,
            "cpus_nr_periods": 7,
            "mem_limit_bytes": 2048,
            "mem_total_bytes": u64::MAX,
        })
    );
    // What the Mesos v1 API example sends.
    let parsed: ResourceStatistics =
        from_json_str(r#"{"mem_limit_bytes":2048,"timestamp":0.0}"#).unwrap();
    assert_eq!(parsed.mem_limit_bytes, Some(2048));
    assert_eq!(parsed.timestamp, 0.0);
}

#[test]
fn enums_are_written_by_name() {
    let term = Termination {
        status: Some(9),
        state: Some(TaskState::TaskFailed as i32),
        reasons: vec![task_status::Reason::ContainerLimitationMemory as i32],
        message: Some("oom".into()),
    };
    let value = to_json_value(&term).unwrap();
    assert_eq!(
        value,
        json!({
            "message": "oom",
            "status": 9,
            "state": "TASK_FAILED",
            "reasons": ["REASON_CONTAINER_LIMITATION_MEMORY"],
        })
    );
    assert_eq!(
        from_json_str::<Termination>(&value.to_string()).unwrap(),
        term
    );
}

#[test]
fn bad_json_is_refused() {
    let err = from_json_str::<ContainerId>(r#"{"value":"a","nope":1}"#).unwrap_err();
    assert!(matches!(err, JsonError::Json { ref message, .. } if message == "mesos.ContainerID"));

    let err = from_json_str::<ContainerId>(r#"{"parent":{"value":"a"}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesos.ContainerID is missing required field value"
    );

    let err = from_json_str::<ResourceStatistics>(r#"{"timestamp":"soon"}"#).unwrap_err();
    assert!(matches!(err, JsonError::Json { .. }), "{err:?}");

    let err = from_json_str::<ContainerId>(r#"{"value":"a"} trailing"#).unwrap_err();
    assert!(matches!(err, JsonError::Json { .. }), "{err:?}");
}
