//! `phobos status ID`: one container in detail.

use phobos_runtime::Summary;

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    let summary = context::door(global)?
        .summary(&id)?
        .ok_or_else(|| unknown(&id))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(0);
    }
    let state = super::ps::label(summary.state(), summary.termination());
    let started = phobos_core::time::rfc3339(summary.started_at());
    match &summary {
        Summary::Mesos(c) => {
            println!("id:        {}", c.id);
            println!("state:     {state}");
            if let Some(pid) = summary.pid() {
                println!("init pid:  {pid}");
            }
            println!("started:   {started}");
            println!("command:   {}", c.command);
            println!("launcher:  {}", c.launcher.name());
            println!("isolation: {}", c.isolation.join(","));
            println!("sandbox:   {}", c.sandbox.display());
            for n in &c.network_infos {
                let ips: Vec<&str> = n
                    .ip_addresses
                    .iter()
                    .map(|i| i.ip_address.as_str())
                    .collect();
                let ports: Vec<String> = n.port_mappings.iter().map(ToString::to_string).collect();
                print!("network:   {} {} {}", n.name, n.interface, ips.join(","));
                if !ports.is_empty() {
                    print!(" ports {}", ports.join(","));
                }
                println!();
            }
            if let Some(t) = &c.termination {
                print!("ended:     ");
                super::print_termination(t, false)?;
            }
        }
        Summary::Docker(c) => {
            println!("id:            {}", c.id);
            println!("state:         {state}");
            println!("containerizer: docker");
            println!("image:         {}", c.image);
            println!("docker name:   {}", c.name);
            if let Some(pid) = c.pid {
                println!("pid:           {pid}");
            }
            println!("started:       {started}");
            println!("command:       {}", c.command);
            println!("sandbox:       {}", c.sandbox.display());
            if let Some(t) = &c.termination {
                print!("ended:         ");
                super::print_termination(t, false)?;
            }
        }
    }
    Ok(0)
}
