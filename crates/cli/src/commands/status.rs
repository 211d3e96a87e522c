//! `phobos status ID`: one container in detail.

use super::{parse_id, unknown};
use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, id: &str, json: bool) -> anyhow::Result<u8> {
    let id = parse_id(id)?;
    if let Some(docker) = super::docker_owner(global, &id) {
        return docker_status(&docker, &id, json);
    }
    let c = context::containerizer(global)?
        .summary(&id)?
        .ok_or_else(|| unknown(&id))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(0);
    }
    println!("id:        {}", c.id);
    println!("state:     {}", super::ps::state_label(&c));
    if let Some(pid) = c.pid {
        println!("init pid:  {pid}");
    }
    println!("started:   {}", phobos_core::time::rfc3339(c.started_at));
    println!("command:   {}", c.command);
    println!("launcher:  {}", c.launcher.name());
    println!("isolation: {}", c.isolation.join(","));
    println!("sandbox:   {}", c.sandbox.display());
    if let Some(t) = &c.termination {
        print!("ended:     ");
        super::print_termination(t, false)?;
    }
    Ok(0)
}

fn docker_status(
    docker: &phobos_docker::DockerContainerizer,
    id: &phobos_core::ContainerId,
    json: bool,
) -> anyhow::Result<u8> {
    let c = context::block_on(async {
        let engine = docker.engine().await.ok();
        docker.summary(id, engine.as_ref()).await
    })??
    .ok_or_else(|| unknown(id))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(0);
    }
    println!("id:            {}", c.id);
    println!(
        "state:         {}",
        super::ps::label(c.state, c.termination.as_ref())
    );
    println!("containerizer: docker");
    println!("image:         {}", c.image);
    println!("docker name:   {}", c.name);
    if let Some(pid) = c.pid {
        println!("pid:           {pid}");
    }
    println!(
        "started:       {}",
        phobos_core::time::rfc3339(c.started_at)
    );
    println!("command:       {}", c.command);
    println!("sandbox:       {}", c.sandbox.display());
    if let Some(t) = &c.termination {
        print!("ended:         ");
        super::print_termination(t, false)?;
    }
    Ok(0)
}
