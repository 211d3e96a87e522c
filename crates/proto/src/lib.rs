//! Mesos protocol types for phobos.
//!
//! The `.proto` files under `proto/` re-author the subset of Apache Mesos's
//! `mesos.proto`, `containerizer.proto` and `v1/agent/agent.proto` that the
//! external containerizer protocol and the v1 agent API need, keeping every field name, number and type, so the bytes
//! are interchangeable with a real agent. They are compiled at build time by
//! protox and prost-build (no protoc needed).
//!
//! - [`mesos`], [`containerizer`], [`agent`]: the generated message types. Proto2
//!   `required` fields are plain values in Rust; prost always writes them.
//! - [`ecp`]: the external containerizer's 4-byte length-prefixed framing,
//!   which also refuses messages with missing `required` fields as Mesos does.
//! - [`recordio`]: the `<length>\n<bytes>` framing of the v1 HTTP APIs.
//! - [`json`]: Mesos's JSON mapping (snake_case, 64-bit integers as numbers,
//!   enums by name).

#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
mod generated {
    pub mod mesos {
        include!(concat!(env!("OUT_DIR"), "/mesos.rs"));

        pub mod containerizer {
            include!(concat!(env!("OUT_DIR"), "/mesos.containerizer.rs"));
        }

        pub mod v1 {
            pub mod agent {
                include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.rs"));
            }
        }
    }
}

/// Messages of package `mesos`.
pub use generated::mesos;
/// Messages of package `mesos.containerizer` (the external containerizer).
pub use generated::mesos::containerizer;
/// Messages of package `mesos.v1.agent` (the v1 agent API's container calls).
pub use generated::mesos::v1::agent;

/// The encoded `FileDescriptorSet` of the `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

pub mod ecp;
pub mod json;
pub mod recordio;
mod reflect;
