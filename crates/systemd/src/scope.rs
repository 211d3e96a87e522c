//! Transient scope units for containers, through systemd's D-Bus API
//! (`org.freedesktop.systemd1.Manager`, see systemd's "Control Group APIs
//! and Delegation" and `org.freedesktop.systemd1(5)`), as runc's and
//! crun's systemd cgroup drivers do: `StartTransientUnit` makes
//! `phobos-<id>.scope` in a slice with `Delegate=yes`, so systemd creates
//! the cgroup, enables the controllers for it and leaves everything below
//! it to us; `StopUnit` ends it. Each call waits for its job to finish
//! (the `JobRemoved` signal).

use std::time::Duration;

use crate::bus::{Bus, BusError};
use crate::wire::{Call, Value, Writer};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// The prefix of every scope Phobos makes.
pub const SCOPE_PREFIX: &str = "phobos-";
/// The suffix of a scope unit's name.
pub const SCOPE_SUFFIX: &str = ".scope";
/// systemd's longest unit name (`UNIT_NAME_MAX` less the NUL).
pub const UNIT_NAME_MAX: usize = 255;

/// Errors of the scope operations, naming the unit.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("systemd unit {unit}: {source}")]
    Bus { unit: String, source: BusError },
    #[error("systemd unit {unit}: its {op} job ended '{result}'")]
    Job {
        unit: String,
        op: &'static str,
        result: String,
    },
    #[error(
        "container id '{0}' makes a systemd unit name longer than {UNIT_NAME_MAX} bytes (escaped); use a shorter id with cgroups_driver = \"systemd\""
    )]
    NameTooLong(String),
}

/// The unit name of container `id`'s scope: `phobos-<id>.scope`, every
/// byte other than ASCII letters, digits, `:`, `_` and `-` escaped as
/// `\xNN` (systemd's unit name escaping).
pub fn scope_name(id: &str) -> Result<String, ScopeError> {
    let mut name = String::from(SCOPE_PREFIX);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-') {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("\\x{b:02x}"));
        }
    }
    name.push_str(SCOPE_SUFFIX);
    if name.len() > UNIT_NAME_MAX {
        return Err(ScopeError::NameTooLong(id.to_owned()));
    }
    Ok(name)
}

/// The container ID a scope's unit name (or cgroup directory name) stands
/// for, or `None` for a name that is not one of ours.
pub fn scope_id(name: &str) -> Option<String> {
    let inner = name
        .strip_prefix(SCOPE_PREFIX)?
        .strip_suffix(SCOPE_SUFFIX)?;
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = inner.get(i + 2..i + 4)?;
            if bytes.get(i + 1) != Some(&b'x') {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let id = String::from_utf8(out).ok()?;
    // Only the canonical spelling: one container, one unit name.
    (scope_name(&id).ok()? == name).then_some(id)
}

/// A client of systemd's manager on the system bus.
pub struct Systemd {
    bus: Bus,
}

impl Systemd {
    /// Connects; every wait (the bus, a job) is bounded by `timeout`.
    pub fn connect(timeout: Duration) -> Result<Self, BusError> {
        let mut bus = Bus::system(timeout)?;
        bus.add_match(&format!(
            "type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',interface='{MANAGER}',member='JobRemoved'"
        ))?;
        Ok(Self { bus })
    }

    /// Starts transient scope `unit` in `slice` holding `pids`, with
    /// `Delegate=yes` (the cgroup below is ours) and
    /// `CollectMode=inactive-or-failed` (the unit is gone once it stops,
    /// failed or not), and waits until it runs.
    pub fn start_scope(
        &mut self,
        unit: &str,
        slice: &str,
        description: &str,
        pids: &[u32],
    ) -> Result<(), ScopeError> {
        let mut body = Writer::default();
        body.str(unit);
        body.str("fail");
        body.array(8, |w| {
            let prop = |w: &mut Writer, name: &str, sig: &str, f: &dyn Fn(&mut Writer)| {
                w.structure(|w| {
                    w.str(name);
                    w.variant(sig, f);
                });
            };
            prop(w, "Description", "s", &|w| w.str(description));
            prop(w, "Slice", "s", &|w| w.str(slice));
            prop(w, "Delegate", "b", &|w| w.bool(true));
            prop(w, "CollectMode", "s", &|w| w.str("inactive-or-failed"));
            // As runc: the scope is ordered by nothing but its slice.
            prop(w, "DefaultDependencies", "b", &|w| w.bool(false));
            prop(w, "PIDs", "au", &|w| {
                w.array(4, |w| {
                    for &pid in pids {
                        w.u32(pid);
                    }
                })
            });
        });
        // No auxiliary units.
        body.array(8, |_| {});
        let job = self.job_call(unit, "StartTransientUnit", "ssa(sv)a(sa(sv))", body)?;
        self.wait_job(unit, "start", &job)
    }

    /// Stops `unit` and waits until it is gone; a unit that does not exist
    /// (already stopped and collected) is fine.
    pub fn stop_unit(&mut self, unit: &str) -> Result<(), ScopeError> {
        let mut body = Writer::default();
        body.str(unit);
        body.str("replace");
        match self.job_call(unit, "StopUnit", "ss", body) {
            Ok(job) => self.wait_job(unit, "stop", &job),
            Err(ScopeError::Bus { source, .. })
                if source.remote_name() == Some("org.freedesktop.systemd1.NoSuchUnit") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Calls a manager method returning a job's object path.
    fn job_call(
        &mut self,
        unit: &str,
        member: &str,
        signature: &str,
        body: Writer,
    ) -> Result<String, ScopeError> {
        let bus_err = |source| ScopeError::Bus {
            unit: unit.to_owned(),
            source,
        };
        let reply = self
            .bus
            .call(&Call {
                destination: SYSTEMD,
                path: MANAGER_PATH,
                interface: MANAGER,
                member,
                signature,
                body: body.buf,
            })
            .map_err(bus_err)?;
        reply.first_str().ok_or_else(|| {
            bus_err(BusError::Remote {
                member: member.to_owned(),
                name: "(reply)".into(),
                message: format!("no job path in a reply of signature '{}'", reply.signature),
            })
        })
    }

    /// Waits for `JobRemoved` of `job`; its result must be `done`.
    fn wait_job(&mut self, unit: &str, op: &'static str, job: &str) -> Result<(), ScopeError> {
        let msg = self
            .bus
            .wait_signal(&format!("the {op} job of {unit}"), |m| {
                m.member.as_deref() == Some("JobRemoved")
                    && matches!(m.values().ok().as_deref(), Some([_, Value::Str(p), ..]) if p == job)
            })
            .map_err(|source| ScopeError::Bus {
                unit: unit.to_owned(),
                source,
            })?;
        match msg.values().ok().as_deref() {
            Some([_, _, _, Value::Str(result)]) if result == "done" => Ok(()),
            Some([_, _, _, Value::Str(result)]) => Err(ScopeError::Job {
                unit: unit.to_owned(),
                op,
                result: result.clone(),
            }),
            _ => Err(ScopeError::Job {
                unit: unit.to_owned(),
                op,
                result: "(unreadable)".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_escape_and_round_trip() {
        assert_eq!(scope_name("web-1").unwrap(), "phobos-web-1.scope");
        assert_eq!(scope_name("a b").unwrap(), "phobos-a\\x20b.scope");
        assert_eq!(scope_name("é").unwrap(), "phobos-\\xc3\\xa9.scope");
        for id in ["web-1", "a b", "é", "x:y_z", "a\\b"] {
            assert_eq!(scope_id(&scope_name(id).unwrap()).as_deref(), Some(id));
        }
        assert_eq!(scope_id("phobos.slice"), None);
        assert_eq!(scope_id("phobos-a\\x2.scope"), None);
        assert_eq!(scope_id("phobos-a\\x2d.scope"), None, "non-canonical");
        assert_eq!(scope_id("docker-a.scope"), None);
        let long = "x".repeat(242);
        assert!(scope_name(&long).is_ok());
        assert!(matches!(
            scope_name(&"é".repeat(100)),
            Err(ScopeError::NameTooLong(_))
        ));
    }
}
