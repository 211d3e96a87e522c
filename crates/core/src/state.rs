//! The Mesos container state machine (§3.2 of the reference):
//! PROVISIONING → PREPARING → ISOLATING → FETCHING → RUNNING, and DESTROYING
//! from any of them. `TERMINATED` is Phobos's own final state: the container
//! is gone but its termination is kept on disk until `phobos state --rm`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerState {
    Provisioning,
    Preparing,
    Isolating,
    Fetching,
    Running,
    Destroying,
    Terminated,
}

impl ContainerState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Preparing => "PREPARING",
            Self::Isolating => "ISOLATING",
            Self::Fetching => "FETCHING",
            Self::Running => "RUNNING",
            Self::Destroying => "DESTROYING",
            Self::Terminated => "TERMINATED",
        }
    }

    /// The state named `name` (as [`ContainerState::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Provisioning,
            Self::Preparing,
            Self::Isolating,
            Self::Fetching,
            Self::Running,
            Self::Destroying,
            Self::Terminated,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Whether a launch is still under way in this state.
    pub fn is_launching(self) -> bool {
        matches!(
            self,
            Self::Provisioning | Self::Preparing | Self::Isolating | Self::Fetching
        )
    }

    /// Whether the launch sequence may move from `self` to `next`.
    pub fn may_become(self, next: Self) -> bool {
        use ContainerState::*;
        matches!(
            (self, next),
            (Provisioning, Preparing)
                | (Preparing, Isolating)
                | (Isolating, Fetching)
                | (Fetching, Running)
                | (
                    Provisioning | Preparing | Isolating | Fetching | Running,
                    Destroying
                )
                | (Destroying | Running, Terminated)
        )
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `state` checkpoint: the current state and when it was entered
/// (seconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    pub state: ContainerState,
    pub since: f64,
}

impl StateRecord {
    /// `state`, entered now.
    pub fn now(state: ContainerState) -> Self {
        Self {
            state,
            since: crate::time::now_secs(),
        }
    }

    /// The compact form stored as the target of the `state` symlink:
    /// `"<STATE> <since>"`.
    pub fn to_link(&self) -> String {
        format!("{} {}", self.state.name(), self.since)
    }

    /// Parses [`StateRecord::to_link`]'s form.
    pub fn from_link(text: &str) -> Option<Self> {
        let (name, since) = text.split_once(' ')?;
        Some(Self {
            state: ContainerState::from_name(name)?,
            since: since.parse().ok().filter(|s: &f64| s.is_finite())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ContainerState::*;

    #[test]
    fn launch_order_is_enforced() {
        assert!(Provisioning.may_become(Preparing));
        assert!(Fetching.may_become(Running));
        assert!(!Provisioning.may_become(Running));
        assert!(!Running.may_become(Preparing));
        for s in [Provisioning, Preparing, Isolating, Fetching, Running] {
            assert!(s.may_become(Destroying), "{s} cannot be destroyed");
        }
        assert!(!Terminated.may_become(Destroying));
    }

    #[test]
    fn link_form_round_trips_and_rejects_garbage() {
        let r = super::StateRecord {
            state: Running,
            since: 1_795_291_261.069_297_6,
        };
        assert_eq!(super::StateRecord::from_link(&r.to_link()), Some(r));
        for bad in [
            "",
            "RUNNING",
            "RUNNING x",
            "BOGUS 1",
            "RUNNING NaN",
            "running 1",
        ] {
            assert_eq!(super::StateRecord::from_link(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn serializes_with_mesos_names() {
        let json = serde_json::to_string(&Isolating).unwrap();
        assert_eq!(json, "\"ISOLATING\"");
    }
}
