//! systemd's side of a host: containers placed in transient scope units
//! created over systemd's D-Bus API (`cgroups_driver = "systemd"`).
//!
//! The D-Bus client is our own and minimal (`wire`, `bus`): the scope
//! driver needs four calls and one signal on the system bus, which is a
//! few hundred lines against a general D-Bus library and its async
//! runtime and macros (see README's dependency notes).

pub mod bus;
pub mod scope;
pub mod wire;

pub use bus::BusError;
pub use scope::{ScopeError, Systemd, scope_id, scope_name};
