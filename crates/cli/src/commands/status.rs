//! `phobos status ID`: one container in detail.
//!
//! The text is drawn from the summary's JSON (the shape `status --json`
//! prints), so a summary read from the runtime directory and one answered
//! by `phobos agent` (`--agent`) are shown by the same code.

use std::path::PathBuf;

use phobos_core::{ContainerState, LauncherKind, PortMapping, Termination};
use serde::Deserialize;

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let summary = context::door(global)?
        .summary(&id)?
        .ok_or_else(|| unknown(&id))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(0);
    }
    print(&View::deserialize(serde_json::to_value(&summary)?)?)?;
    Ok(0)
}

/// A container's summary as its JSON has it (Mesos or Docker).
#[derive(Debug, Deserialize)]
pub(crate) struct View {
    pub id: String,
    pub state: ContainerState,
    #[serde(default)]
    pid: Option<i32>,
    pub started_at: f64,
    command: String,
    /// `docker` for a Docker container.
    #[serde(default)]
    containerizer: Option<String>,
    #[serde(default)]
    image: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    launcher: Option<LauncherKind>,
    #[serde(default)]
    isolation: Vec<String>,
    sandbox: PathBuf,
    #[serde(default)]
    pub termination: Option<Termination>,
    #[serde(default)]
    network_infos: Vec<NetView>,
}

#[derive(Debug, Deserialize)]
struct NetView {
    name: String,
    interface: String,
    #[serde(default)]
    ip_addresses: Vec<IpView>,
    #[serde(default)]
    port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Deserialize)]
struct IpView {
    ip_address: String,
}

impl View {
    fn docker(&self) -> bool {
        self.containerizer.as_deref() == Some("docker")
    }

    /// The init pid while it runs (as `Summary::pid`).
    pub fn pid(&self) -> Option<i32> {
        if !self.docker() && self.state == ContainerState::Terminated {
            return None;
        }
        self.pid
    }

    /// The first address of its own networks (as `Summary::address`).
    pub fn address(&self) -> Option<&str> {
        if self.docker() {
            return None;
        }
        self.network_infos
            .iter()
            .flat_map(|n| &n.ip_addresses)
            .map(|ip| ip.ip_address.as_str())
            .next()
    }

    /// The command for listings (as `Summary::command`).
    pub fn listed_command(&self) -> String {
        if self.docker() {
            format!("[docker {}] {}", self.image, self.command)
        } else {
            self.command.clone()
        }
    }
}

/// The human text of one container.
pub(crate) fn print(c: &View) -> anyhow::Result<()> {
    let state = super::ps::label(c.state, c.termination.as_ref());
    let started = phobos_core::time::rfc3339(c.started_at);
    if c.docker() {
        outln!("id:            {}", c.id);
        outln!("state:         {state}");
        outln!("containerizer: docker");
        outln!("image:         {}", c.image);
        outln!("docker name:   {}", c.name);
        if let Some(pid) = c.pid {
            outln!("pid:           {pid}");
        }
        outln!("started:       {started}");
        outln!("command:       {}", c.command);
        outln!("sandbox:       {}", c.sandbox.display());
        if let Some(t) = &c.termination {
            out!("ended:         ");
            super::print_termination(t, false)?;
        }
        return Ok(());
    }
    outln!("id:        {}", c.id);
    outln!("state:     {state}");
    if let Some(pid) = c.pid() {
        outln!("init pid:  {pid}");
    }
    outln!("started:   {started}");
    outln!("command:   {}", c.command);
    outln!("launcher:  {}", c.launcher.map_or("-", LauncherKind::name));
    outln!("isolation: {}", c.isolation.join(","));
    outln!("sandbox:   {}", c.sandbox.display());
    for n in &c.network_infos {
        let ips: Vec<&str> = n
            .ip_addresses
            .iter()
            .map(|i| i.ip_address.as_str())
            .collect();
        let ports: Vec<String> = n.port_mappings.iter().map(ToString::to_string).collect();
        out!("network:   {} {} {}", n.name, n.interface, ips.join(","));
        if !ports.is_empty() {
            out!(" ports {}", ports.join(","));
        }
        outln!();
    }
    if let Some(t) = &c.termination {
        out!("ended:     ");
        super::print_termination(t, false)?;
    }
    Ok(())
}
