//! How a container ended: Mesos's `ContainerTermination` (status, state,
//! reason, message, limited resources), stored as JSON in the runtime
//! directory and printed by `phobos wait --json`.

use serde::{Deserialize, Serialize};

use crate::WaitStatus;

/// The subset of Mesos `TaskState` a termination can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_LOST")]
    Lost,
}

/// Mesos `TaskStatus.Reason` values Phobos produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::enum_variant_names)]
pub enum Reason {
    #[serde(rename = "REASON_CONTAINER_LIMITATION")]
    ContainerLimitation,
    #[serde(rename = "REASON_CONTAINER_LIMITATION_MEMORY")]
    ContainerLimitationMemory,
    #[serde(rename = "REASON_CONTAINER_LIMITATION_DISK")]
    ContainerLimitationDisk,
    #[serde(rename = "REASON_CONTAINER_LAUNCH_FAILED")]
    ContainerLaunchFailed,
    #[serde(rename = "REASON_EXECUTOR_TERMINATED")]
    ExecutorTerminated,
}

/// A container's termination. Absent fields are omitted from JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Termination {
    /// Raw wait status of the command (not of the init helper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WaitStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Resources whose limit was hit, e.g. `["mem"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limited_resources: Vec<String>,
}

/// The `phobos wait --json` shape: the termination plus the decoded status.
#[derive(Serialize)]
pub struct TerminationReport<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<TaskState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub limited_resources: &'a [String],
}

impl Termination {
    /// The termination of a command that ended on its own.
    pub fn from_exit(status: WaitStatus) -> Self {
        let state = if status.exit_code() == Some(0) {
            TaskState::Finished
        } else {
            TaskState::Failed
        };
        Self {
            status: Some(status),
            state: Some(state),
            message: Some(format!("Command {status}")),
            ..Self::default()
        }
    }

    pub fn report(&self) -> TerminationReport<'_> {
        TerminationReport {
            status: self.status.map(WaitStatus::raw),
            exit_code: self.status.and_then(WaitStatus::exit_code),
            signal: self.status.and_then(WaitStatus::signal),
            state: self.state,
            reason: self.reason,
            message: self.message.as_deref(),
            limited_resources: &self.limited_resources,
        }
    }

    /// One line saying which limit ended the container (the first line of
    /// the message, e.g. "Memory limit exceeded: Requested: … Maximum
    /// Used: …"), or `None` when no limit did.
    pub fn limitation_line(&self) -> Option<&str> {
        match self.reason? {
            Reason::ContainerLimitation
            | Reason::ContainerLimitationMemory
            | Reason::ContainerLimitationDisk => {}
            Reason::ContainerLaunchFailed | Reason::ExecutorTerminated => return None,
        }
        let line = self
            .message
            .as_deref()
            .map_or("", |m| m.lines().next().unwrap_or("").trim());
        Some(if line.is_empty() {
            "a resource limit was exceeded"
        } else {
            line
        })
    }

    /// The exit code `phobos run` and `phobos wait` give for this termination:
    /// the command's code, 128 + signal, or 255 when there is no status.
    pub fn shell_exit_code(&self) -> i32 {
        self.status.map_or(255, WaitStatus::shell_exit_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_limitations_have_a_limitation_line() {
        let oom = Termination {
            status: Some(WaitStatus::signaled(9)),
            reason: Some(Reason::ContainerLimitationMemory),
            message: Some("Memory limit exceeded: Requested: 64MB Maximum Used: 64MB\n\nMEMORY STATISTICS: \ncache 0\n".into()),
            ..Termination::default()
        };
        assert_eq!(
            oom.limitation_line(),
            Some("Memory limit exceeded: Requested: 64MB Maximum Used: 64MB")
        );
        let bare = Termination {
            reason: Some(Reason::ContainerLimitationDisk),
            ..Termination::default()
        };
        assert_eq!(
            bare.limitation_line(),
            Some("a resource limit was exceeded")
        );
        assert_eq!(
            Termination::from_exit(WaitStatus::exited(1)).limitation_line(),
            None
        );
    }

    #[test]
    fn report_omits_absent_fields() {
        let t = Termination::from_exit(WaitStatus::exited(7));
        let json = serde_json::to_value(t.report()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": 1792, "exit_code": 7, "state": "TASK_FAILED",
                               "message": "Command exited with status 7"})
        );
        let killed = Termination {
            status: Some(WaitStatus::signaled(9)),
            state: Some(TaskState::Killed),
            ..Termination::default()
        };
        let json = serde_json::to_value(killed.report()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": 9, "signal": 9, "state": "TASK_KILLED"})
        );
        assert_eq!(killed.shell_exit_code(), 137);
    }

    #[test]
    fn round_trips_through_json() {
        let t = Termination {
            status: Some(WaitStatus::signaled(9)),
            state: Some(TaskState::Failed),
            reason: Some(Reason::ContainerLimitationMemory),
            message: Some("Memory limit exceeded".into()),
            limited_resources: vec!["mem".into()],
        };
        let back: Termination = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}
