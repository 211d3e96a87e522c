//! Compiles `proto/*.proto` without protoc: protox parses them into a
//! `FileDescriptorSet`, which is written to `OUT_DIR` (for reflection) and
//! handed to prost-build to generate the Rust types.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/mesos.proto",
        "proto/containerizer.proto",
        "proto/agent.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }

    let fds = protox::compile(files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(out_dir.join("descriptors.bin"), fds.encode_to_vec())?;

    prost_build::Config::new()
        .enable_type_names()
        .compile_fds(fds)?;
    Ok(())
}
