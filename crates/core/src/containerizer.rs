//! The containerizer interface every face (CLI, external containerizer
//! protocol, HTTP API) talks to, and the composing containerizer (Mesos
//! §5) that routes each request to the containerizer owning the container.
//!
//! Requests are data: an [`Operation`] on one container, answered by an
//! [`Outcome`]. One owner, [`Composing`], applies them, so a face never
//! decides by itself which containerizer a container belongs to.

use crate::{ContainerId, ResourceStatistics, Resources, Termination};

/// A containerizer's own error, kept whole (callers downcast it to tell a
/// usage error from a runtime failure).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What is asked of one container.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// Block until the container ends; its termination.
    Wait,
    /// Kill every process, free what it held; its termination.
    Destroy,
    /// Send a signal to the command.
    Kill { signal: i32 },
    /// Its resource statistics (a running container only).
    Usage,
    /// The requests and limits it runs with now.
    Resources,
    /// New requests and limits, applied live. The memory hard limit is only
    /// raised unless `force`.
    Update { resources: Resources, force: bool },
}

/// The answer to an [`Operation`], one variant per kind of result.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// For `Wait` and `Destroy`.
    Ended(Termination),
    /// For `Kill` and `Update`.
    Done,
    /// For `Usage` (boxed: it is far bigger than the other answers).
    Usage(Box<ResourceStatistics>),
    /// For `Resources`.
    Resources(Resources),
}

/// A containerizer as the composing containerizer sees it.
pub trait Containerizer {
    /// Its name in messages ("mesos", "docker").
    fn name(&self) -> &'static str;

    /// Whether this containerizer holds a record of `id`.
    fn owns(&self, id: &ContainerId) -> bool;

    /// Applies `operation` to container `id`; `Ok(None)` when the container
    /// is unknown.
    fn apply(&self, id: &ContainerId, operation: Operation) -> Result<Option<Outcome>, BoxError>;
}

/// Routes every operation to the containerizer that owns the container;
/// containers nobody owns go to the fallback (the Mesos containerizer, the
/// one that answers "unknown").
pub struct Composing {
    members: Vec<Box<dyn Containerizer>>,
    fallback: Box<dyn Containerizer>,
}

impl Composing {
    /// `members` are asked in order whether they own a container.
    pub fn new(members: Vec<Box<dyn Containerizer>>, fallback: Box<dyn Containerizer>) -> Self {
        Self { members, fallback }
    }

    /// The containerizer responsible for `id`.
    pub fn owner(&self, id: &ContainerId) -> &dyn Containerizer {
        self.members
            .iter()
            .find(|member| member.owns(id))
            .unwrap_or(&self.fallback)
            .as_ref()
    }

    /// Applies `operation` to `id` through its owner.
    pub fn apply(
        &self,
        id: &ContainerId,
        operation: Operation,
    ) -> Result<Option<Outcome>, BoxError> {
        self.owner(id).apply(id, operation)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::WaitStatus;

    /// What the fakes were asked, as "containerizer:id" and the operation.
    type Seen = Rc<RefCell<Vec<(String, Operation)>>>;

    /// Owns the IDs it was given and records what it was asked.
    struct Fake {
        name: &'static str,
        ids: Vec<&'static str>,
        seen: Seen,
    }

    impl Containerizer for Fake {
        fn name(&self) -> &'static str {
            self.name
        }

        fn owns(&self, id: &ContainerId) -> bool {
            self.ids.contains(&id.as_str())
        }

        fn apply(
            &self,
            id: &ContainerId,
            operation: Operation,
        ) -> Result<Option<Outcome>, BoxError> {
            self.seen
                .borrow_mut()
                .push((format!("{}:{id}", self.name), operation.clone()));
            if !self.owns(id) {
                return Ok(None);
            }
            Ok(Some(match operation {
                Operation::Wait | Operation::Destroy => {
                    Outcome::Ended(Termination::from_exit(WaitStatus::exited(0)))
                }
                Operation::Usage => Outcome::Usage(Box::default()),
                Operation::Resources => Outcome::Resources(Resources::default()),
                Operation::Kill { .. } | Operation::Update { .. } => Outcome::Done,
            }))
        }
    }

    fn composing() -> (Composing, Seen) {
        let seen = Seen::default();
        let fake = |name, ids| -> Box<dyn Containerizer> {
            Box::new(Fake {
                name,
                ids,
                seen: seen.clone(),
            })
        };
        let composing = Composing::new(vec![fake("docker", vec!["d1"])], fake("mesos", vec!["m1"]));
        (composing, seen)
    }

    fn id(text: &str) -> ContainerId {
        ContainerId::new(text).unwrap()
    }

    #[test]
    fn each_operation_goes_to_the_owner_only() {
        let (composing, seen) = composing();
        assert_eq!(composing.owner(&id("d1")).name(), "docker");
        assert_eq!(composing.owner(&id("m1")).name(), "mesos");
        assert_eq!(
            composing
                .apply(&id("d1"), Operation::Kill { signal: 15 })
                .unwrap(),
            Some(Outcome::Done)
        );
        assert!(matches!(
            composing.apply(&id("m1"), Operation::Wait).unwrap(),
            Some(Outcome::Ended(_))
        ));
        assert_eq!(
            *seen.borrow(),
            [
                ("docker:d1".to_owned(), Operation::Kill { signal: 15 }),
                ("mesos:m1".to_owned(), Operation::Wait),
            ]
        );
    }

    #[test]
    fn a_container_nobody_owns_is_the_fallbacks_to_call_unknown() {
        let (composing, seen) = composing();
        assert_eq!(composing.owner(&id("x")).name(), "mesos");
        assert_eq!(composing.apply(&id("x"), Operation::Destroy).unwrap(), None);
        assert_eq!(*seen.borrow(), [("mesos:x".to_owned(), Operation::Destroy)]);
    }
}
