//! Our `Termination` as the two generations of the ECP's message.
//!
//! `state` and `reasons` (0.26+) and `killed` (0.19-0.25) tell the agent
//! that the containerizer itself ended the container by enforcing a limit;
//! the agent then fails the tasks still live with our message. Otherwise
//! they stay unset and the agent decides (TASK_FAILED for command
//! executors, TASK_LOST for others), as with Mesos's own containerizers.
//! `status` is the command's raw wait status (`exit code << 8`, or the
//! signal number), absent when the command never ran.

use phobos_core::{Reason, Termination};
use phobos_proto::containerizer;
use phobos_proto::mesos::TaskState;
use phobos_proto::mesos::task_status::Reason as MesosReason;
use phobos_runtime::mesos_proto::reason;

/// Whether the container ended because a limit was enforced.
fn limited(t: &Termination) -> bool {
    matches!(
        t.reason,
        Some(
            Reason::ContainerLimitation
                | Reason::ContainerLimitationMemory
                | Reason::ContainerLimitationDisk
        )
    ) || !t.limited_resources.is_empty()
}

/// Agents 0.26 - 1.0.
pub fn v0_26(t: &Termination) -> containerizer::Termination {
    let (state, reasons) = if limited(t) {
        let why = t.reason.map_or(MesosReason::ContainerLimitation, reason);
        (Some(TaskState::TaskFailed as i32), vec![why as i32])
    } else {
        (None, Vec::new())
    };
    containerizer::Termination {
        status: t.status.map(|s| s.raw()),
        state,
        reasons,
        message: Some(t.message.clone().unwrap_or_default()),
    }
}

/// Agents 0.19 - 0.25.
pub fn v0_19(t: &Termination) -> containerizer::TerminationV019 {
    containerizer::TerminationV019 {
        killed: limited(t),
        message: t.message.clone().unwrap_or_default(),
        status: t.status.map(|s| s.raw()),
    }
}

#[cfg(test)]
mod tests {
    use phobos_core::{TaskState as CoreState, WaitStatus};

    use super::*;

    #[test]
    fn a_plain_exit_carries_only_status_and_message() {
        let t = Termination::from_exit(WaitStatus::exited(3));
        let new = v0_26(&t);
        assert_eq!(new.status, Some(3 << 8));
        assert_eq!(new.state, None);
        assert!(new.reasons.is_empty());
        assert_eq!(new.message.as_deref(), Some("Command exited with status 3"));
        let old = v0_19(&t);
        assert!(!old.killed);
        assert_eq!(old.status, Some(3 << 8));
        assert_eq!(old.message, "Command exited with status 3");
    }

    #[test]
    fn an_enforced_limit_fails_the_tasks() {
        let t = Termination {
            status: Some(WaitStatus::signaled(9)),
            state: Some(CoreState::Failed),
            reason: Some(Reason::ContainerLimitationMemory),
            message: Some("Memory limit exceeded".into()),
            limited_resources: vec!["mem".into()],
        };
        let new = v0_26(&t);
        assert_eq!(new.status, Some(9));
        assert_eq!(new.state, Some(TaskState::TaskFailed as i32));
        assert_eq!(new.reasons, [MesosReason::ContainerLimitationMemory as i32]);
        assert!(v0_19(&t).killed);
    }

    #[test]
    fn a_launch_that_never_ran_has_no_status() {
        let t = Termination {
            state: Some(CoreState::Failed),
            reason: Some(Reason::ContainerLaunchFailed),
            message: Some("Failed to launch container: x".into()),
            ..Termination::default()
        };
        assert_eq!(v0_26(&t).status, None);
        assert_eq!(v0_19(&t).status, None);
        assert!(!v0_19(&t).killed);
    }
}
