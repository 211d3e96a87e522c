//! `phobos agent`: serves the Mesos v1 agent container API until SIGTERM
//! or SIGINT (see `phobos_agent`); the containers keep running after it
//! stops, and the next agent (or any CLI command) takes them over.

use std::time::Duration;

use crate::cli::{AgentArgs, Global};
use crate::context;
use crate::error::usage;

/// `factory`: the spawner factory `main` forked, if it did.
pub fn run(
    global: &Global,
    args: &AgentArgs,
    factory: Option<phobos_runtime::EarlyFactory>,
) -> anyhow::Result<u8> {
    if args.max_body == 0 || args.max_connections == 0 || args.max_streams == 0 {
        return Err(usage(
            "--max-body, --max-connections and --max-streams must be above 0",
        ));
    }
    if args.heartbeat_secs == 0 {
        return Err(usage("--heartbeat must be at least 1 second"));
    }
    let options = phobos_agent::Options {
        socket: args.socket.clone(),
        tcp: args.listen.clone(),
        token_file: args.token_file.clone(),
        limits: phobos_agent::Limits {
            max_body: args.max_body,
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs(30),
            max_streams: args.max_streams,
            heartbeat: Duration::from_secs(args.heartbeat_secs),
        },
    };
    let early = phobos_agent::Early { factory };
    phobos_agent::serve(context::settings(global), options, early, |socket| {
        errln!("phobos: agent serving on {}", socket.display());
    })
    .map_err(|e| match e {
        phobos_agent::AgentError::BadListen(_)
        | phobos_agent::AgentError::TcpWithoutToken(_)
        | phobos_agent::AgentError::EmptyToken(_)
        | phobos_agent::AgentError::TokenFileMode { .. } => usage(e.to_string()),
        other => anyhow::Error::new(other),
    })?;
    Ok(0)
}
