//! `phobos --agent S run …`: the launch call the CLI sends, read back by
//! the agent's own translation, plans the same `LaunchRequest` as the
//! local `run` with the same options.

use clap::Parser;
use phobos_agent::translate::{Class, launch_intent};
use phobos_proto::agent::call::{LaunchContainer, Type};

use super::{cli, plan, settings};
use crate::cli::{Cli, Command};

fn routed(args: &[&str]) -> phobos_runtime::LaunchIntent {
    let cli = Cli::try_parse_from(["phobos", "run"].iter().chain(args)).unwrap();
    let Command::Run(args) = cli.command else {
        panic!("not a run");
    };
    let (id, call) = crate::commands::via_agent::run::launch_for(&args).unwrap();
    let launch = match call.r#type() {
        Type::LaunchContainer => call.launch_container.unwrap(),
        // As the agent serves it.
        Type::LaunchNestedContainer => {
            let n = call.launch_nested_container.unwrap();
            LaunchContainer {
                container_id: n.container_id,
                command: n.command,
                container: n.container,
                ..LaunchContainer::default()
            }
        }
        other => panic!("not a launch: {other:?}"),
    };
    launch_intent(&id, &launch, true, Class::Default).unwrap()
}

#[test]
fn a_routed_run_plans_the_local_runs_request() {
    let s = settings("", 0);
    for args in [
        &["--id", "c1", "--", "/bin/true"][..],
        &[
            "--id",
            "c2",
            "-e",
            "A=1",
            "-e",
            "B=two words",
            "-u",
            "nobody",
            "--",
            "sh",
            "-c",
            "echo $A",
        ],
        &[
            "--id",
            "c3",
            "--cpus",
            "0.5",
            "--mem",
            "64",
            "--mem-limit",
            "inf",
            "--cpus-limit",
            "2",
            "--pids-limit",
            "50",
            "--",
            "sleep",
            "1",
        ],
        &["--parent", "web", "--id", "kid", "--", "sleep", "1"],
        &[
            "--parent",
            "web",
            "--id",
            "kid",
            "--share-pid",
            "--share-ipc",
            "--",
            "sleep",
            "1",
        ],
        &[
            "--parent",
            "web",
            "--id",
            "kid",
            "--share-cgroups",
            "--",
            "sleep",
            "1",
        ],
        &[
            "--parent", "web", "--id", "kid", "--mem", "32", "--", "sleep", "1",
        ],
    ] {
        assert_eq!(plan(&s, routed(args)), plan(&s, cli(args)), "{args:?}");
    }
}
