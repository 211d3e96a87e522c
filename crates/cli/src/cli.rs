//! Command-line grammar.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use phobos_runtime::Settings;

#[derive(Parser, Debug)]
#[command(
    name = "phobos",
    version,
    about = "A containerizer: Mesos semantics, fast launches, exact exit codes"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The heading global options are listed under in every `--help`, apart
/// from the subcommand's own.
const GLOBAL: &str = "Global options";

/// The environment variable `--agent` reads.
pub const AGENT_ENV: &str = "PHOBOS_AGENT";

/// `agent` and `ecp` serve containers themselves and have no call to
/// route: an `--agent` they got from the environment (set for the shell's
/// other commands) is dropped; one on their command line stays, to be
/// refused in one line.
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::parser::ValueSource;
    use clap::{CommandFactory, FromArgMatches};
    let mut matches = Cli::command().try_get_matches()?;
    // Asked before the values are taken out of `matches` below.
    let from_env = matches.value_source("agent") == Some(ValueSource::EnvVariable);
    let mut cli =
        Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut Cli::command()))?;
    if from_env && matches!(cli.command, Command::Agent(_) | Command::Ecp { .. }) {
        cli.global.agent = None;
    }
    Ok(cli)
}

#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Configuration file (default: $PHOBOS_CONFIG, /etc/phobos/phobos.toml,
    /// then ~/.config/phobos/phobos.toml for non-root users).
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Runtime state directory (config `runtime_dir`; /run/phobos as root).
    #[arg(long, global = true, help_heading = GLOBAL, env = "PHOBOS_RUNTIME_DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// Sandbox directory root (config `work_dir`; /var/lib/phobos as root).
    #[arg(long, global = true, help_heading = GLOBAL, env = "PHOBOS_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Cgroup directory under each hierarchy (config `cgroups_root`).
    #[arg(
        long = "cgroups-root",
        id = "cgroups_root_flag",
        global = true, help_heading = GLOBAL,
        env = "PHOBOS_CGROUPS_ROOT",
        value_name = "CGROUPS_ROOT"
    )]
    pub cgroups_root_flag: Option<String>,
    /// Log level (off, error, warn, info, debug, trace; config `log.level`);
    /// RUST_LOG overrides.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub log_level: Option<String>,
    /// Send the command to the `phobos agent` serving this Unix socket
    /// (its v1 API) instead of acting on the runtime directory: run, wait,
    /// kill, destroy, ps and status. `agent` and `ecp` ignore the
    /// environment variable.
    #[arg(long, global = true, help_heading = GLOBAL, env = AGENT_ENV, value_name = "SOCKET")]
    pub agent: Option<PathBuf>,
    /// The effective settings (configuration with provenance, flags
    /// applied), built once by `context::resolve`.
    #[arg(skip)]
    pub settings: Option<Arc<Settings>>,
}

/// Each subcommand's arguments are built only when it is the one invoked
/// (`defer`): building them all cost ~0.3 ms on every launch.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// Run a command inside a running container (its namespaces, cgroups,
    /// environment, working directory and user); exits with its code.
    Exec(ExecArgs),
    /// Attach this terminal to a container started with `-d -t` (detach
    /// with Ctrl-P Ctrl-Q); exits with the container's code when it ends.
    Attach {
        /// The container's ID.
        id: String,
    },
    /// Block until a container ends and print its termination.
    Wait {
        /// The container's ID.
        id: String,
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
    },
    /// Send a signal to a container's command.
    Kill {
        /// The container's ID.
        id: String,
        /// Signal name or number.
        #[arg(short, long, default_value = "TERM")]
        signal: String,
    },
    /// Kill every process of a container and free its resources; with
    /// several IDs, kills them all before waiting for any, frees them
    /// concurrently and prints one line each.
    Destroy {
        /// The containers' IDs.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<String>,
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
    },
    /// List containers.
    Ps {
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
        /// Print only the containers' IDs, one a line (`phobos destroy
        /// $(phobos ps -q)`).
        #[arg(short, long, conflicts_with = "json")]
        quiet: bool,
    },
    /// Show one container.
    Status {
        /// The container's ID.
        id: String,
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
    },
    /// Print a container's stdout and stderr, across rotated files.
    Logs {
        /// The container's ID.
        id: String,
        /// Keep printing until the container ends (across rotations).
        #[arg(short, long)]
        follow: bool,
        /// Start this many lines from the end of each stream.
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
        /// Start at the first file (live or rotated) written to within
        /// DURATION (e.g. 10m, 2hrs); lines carry no time, so the whole of
        /// that file is shown.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only stdout.
        #[arg(long, conflicts_with = "stderr")]
        stdout: bool,
        /// Only stderr.
        #[arg(long)]
        stderr: bool,
        /// With --follow: copy a Docker container's output into its sandbox
        /// files instead of printing it (the detached log follower).
        #[arg(long, hide = true, requires = "follow")]
        into_sandbox: bool,
    },
    /// Re-adopt live containers and destroy orphans.
    Recover {
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
    },
    /// Show resource statistics (Mesos ResourceStatistics fields) of one
    /// container, or of every running container.
    Stats {
        /// The container's ID (default: every running container).
        id: Option<String>,
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
    },
    /// Show every container live (CPU, memory, PIDs, network, uptime);
    /// keys: c m p i u n sort, r reverses, / filters by ID prefix, q quits.
    Top(TopArgs),
    /// Change a running container's requests and limits.
    Update(UpdateArgs),
    /// Show or clean the state of terminated containers.
    State {
        /// Remove the runtime and sandbox data of terminated containers.
        #[arg(long)]
        rm: bool,
        /// With --rm: only containers that ended at least this long ago
        /// (e.g. "30s", "10mins", "2hrs", "7days").
        #[arg(long, value_name = "DURATION", requires = "rm")]
        older_than: Option<String>,
    },
    /// Pull, load, list and remove images for the Mesos containerizer.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Print the effective configuration and where each value came from.
    Config {
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
    },
    /// Wait for a Docker command task's container and exit with its code;
    /// SIGTERM or SIGINT destroys it. What `phobos ecp launch` has the
    /// Mesos command executor run on the host (`--override`), as Deimos's
    /// `observe` (docs/docker.md).
    #[command(hide = true)]
    Observe {
        /// The container's ID.
        id: String,
    },
    /// Serve the Mesos v1 agent container API (POST /api/v1), /metrics and
    /// /health on a Unix socket (mode 0600) and, with a token, on TCP;
    /// see docs/agent.md.
    Agent(AgentArgs),
    /// The Mesos external containerizer protocol (what a Mesos agent run
    /// with --containerizer_path="phobos ecp" calls); see docs/mesos.md.
    #[command(hide = true)]
    Ecp {
        #[command(subcommand)]
        call: EcpCall,
    },
}

/// `phobos agent`'s options.
#[derive(Args, Clone, Debug)]
pub struct AgentArgs {
    /// The Unix socket to serve on [default: <runtime-dir>/agent.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Also serve on TCP (`tcp:HOST:PORT`); needs --token-file.
    #[arg(long, value_name = "tcp:ADDR")]
    pub listen: Option<String>,
    /// A file (mode 0600) whose first line is the bearer token TCP clients
    /// must send (`Authorization: Bearer TOKEN`).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body: usize,
    /// Most client connections served at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// Most output streams (ATTACH_CONTAINER_OUTPUT) served at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_streams: usize,
    /// Seconds of silence after which a stream sends a heartbeat record.
    #[arg(long = "heartbeat", value_name = "SECS", default_value_t = 30)]
    pub heartbeat_secs: u64,
}

/// `phobos image …`.
#[derive(Subcommand, Debug, Clone)]
pub enum ImageCommand {
    /// Pull an image from its registry into the store (progress on a
    /// terminal, log lines otherwise).
    Pull {
        /// The image, e.g. busybox, registry:5000/app:1, app@sha256:….
        reference: String,
        /// Give up on a registry that does not connect or stops sending
        /// for this long (e.g. 30secs).
        #[arg(long, value_name = "DURATION", default_value = "30secs")]
        timeout: String,
        /// No progress, only the pulled image's name.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Load the images of a `docker save` archive or an OCI archive.
    Load {
        /// The archive (plain or gzip-compressed tar).
        file: PathBuf,
        /// Name for images the archive does not name (or only tags).
        #[arg(long, value_name = "REFERENCE")]
        name: Option<String>,
    },
    /// List stored images.
    Ls {
        /// Print JSON instead of a table or line.
        #[arg(long)]
        json: bool,
    },
    /// Remove an image (refused while a container uses it) and the layers
    /// no other image uses.
    Rm {
        /// The image.
        reference: String,
    },
    /// Remove layers no image or container uses, and leftovers of
    /// interrupted pulls.
    Prune,
}

// One external containerizer call: one framed protobuf message in on
// stdin, at most one out on stdout, exit 0 on success. (A plain comment:
// see `DockerArgs`.)
#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcpCall {
    /// Launch < containerizer.Launch; returns once the container runs.
    Launch,
    /// Update < containerizer.Update: new resources.
    Update,
    /// Usage < containerizer.Usage > mesos.ResourceStatistics.
    Usage,
    /// Wait < containerizer.Wait > containerizer.Termination; blocks.
    Wait,
    /// Destroy < containerizer.Destroy: kill everything; idempotent.
    Destroy,
    /// Containers > containerizer.Containers: every live container.
    Containers,
    /// Recover: re-adopt live containers, destroy orphans.
    Recover,
}

impl EcpCall {
    /// The subcommand's name, as the agent spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Launch => "launch",
            Self::Update => "update",
            Self::Usage => "usage",
            Self::Wait => "wait",
            Self::Destroy => "destroy",
            Self::Containers => "containers",
            Self::Recover => "recover",
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Container ID (default: a random UUID); with --parent, the nested
    /// container's own ID under its parent (its full ID is PARENT.ID).
    #[arg(long)]
    pub id: Option<String>,
    /// Launch a nested container inside running container PARENT (a full
    /// ID, e.g. a.b): it shares PARENT's network and UTS namespaces, has
    /// its own mount, pid and ipc namespaces, cgroups nested under
    /// PARENT's, and its sandbox in PARENT's at containers/ID.
    #[arg(long, value_name = "PARENT", help_heading = NESTED)]
    pub parent: Option<String>,
    /// Nested: share the parent's pid namespace.
    #[arg(long, requires = "parent", help_heading = NESTED)]
    pub share_pid: bool,
    /// Nested: share the parent's ipc namespace.
    #[arg(long, requires = "parent", help_heading = NESTED)]
    pub share_ipc: bool,
    /// Nested: run in the parent's cgroups (accounted to the parent)
    /// instead of cgroups of its own nested under the parent's.
    #[arg(long, requires = "parent", help_heading = NESTED)]
    pub share_cgroups: bool,
    /// Nested: a DEBUG container (Mesos's ContainerClass::DEBUG): in all
    /// of the parent's namespaces (its files too) and cgroups, with its
    /// environment, working directory and user, no resources of its own;
    /// destroyed by `recover`.
    #[arg(long, requires = "parent", help_heading = NESTED)]
    pub debug: bool,
    /// Print the container ID once it is RUNNING and return.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container's state and sandbox once it ended, as
    /// Docker's --rm (foreground runs; `phobos state --rm` for the rest).
    #[arg(long, conflicts_with = "detach")]
    pub rm: bool,
    /// Comma-separated isolators (Mesos names).
    #[arg(long)]
    pub isolation: Option<String>,
    /// Hostname inside the container (gives it its own UTS namespace).
    #[arg(long)]
    pub hostname: Option<String>,
    /// linux (namespaces + freezer cgroup, needs root) or posix.
    #[arg(long, value_parser = ["linux", "posix"])]
    pub launcher: Option<String>,
    /// Where the container's output goes (overrides `container_logger`):
    /// logrotate (size-bounded files rotated as `[logrotate]` says; for a
    /// Docker container, the engine's json-file log bounded too) or
    /// sandbox (Mesos's unbounded `stdout`/`stderr` files).
    #[arg(long, value_name = "LOGGER")]
    pub container_logger: Option<String>,
    /// Environment variable KEY=VALUE, or KEY for this shell's value
    /// (left out when unset), as Docker (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory of the command (default: the sandbox).
    #[arg(short, long)]
    pub workdir: Option<PathBuf>,
    /// User to run the command as: USER, UID, USER:GROUP or UID:GID, as
    /// Docker (an unknown UID runs with gid 0).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give the command this terminal's stdin.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a pseudo-terminal of its own (with -i, this
    /// terminal's keystrokes; with -d, attach later with `phobos attach`).
    #[arg(short, long)]
    pub tty: bool,
    /// Show no image pull or download (`--fetch`) progress.
    #[arg(short, long)]
    pub quiet: bool,
    /// Run in this root filesystem directory (the Mesos containerizer
    /// pivots into it; `-v` then mounts volumes into it).
    #[arg(long, value_name = "DIR", help_heading = IMAGES)]
    pub rootfs: Option<PathBuf>,
    /// Fetch a URI into the sandbox before the command starts (Mesos
    /// CommandInfo.URI; http, https, file:// or a path; archives are
    /// extracted): URI[,executable][,extract=false][,cache][,output_file=NAME]
    /// (repeatable).
    #[arg(long, value_name = "URI[,OPTION...]")]
    pub fetch: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Sandbox disk limit in MB (measured by disk/du, added when --disk is
    /// given without --isolation).
    #[arg(
        long,
        value_name = "MB",
        allow_hyphen_values = true,
        help_heading = "Resources"
    )]
    pub disk: Option<String>,
    #[command(flatten)]
    pub flags: IsolatorFlagArgs,
    #[command(flatten)]
    pub docker: DockerArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
    /// The command and its arguments (optional with a Docker image: the
    /// image's ENTRYPOINT and CMD run then).
    #[arg(last = true, value_name = "COMMAND", help_heading = "Arguments")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The running container's ID.
    pub id: String,
    /// Environment variable KEY=VALUE, or KEY for this shell's value, added
    /// to the container's (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory (default: the container's).
    #[arg(short, long)]
    pub workdir: Option<PathBuf>,
    /// User to run as: USER, UID, USER:GROUP or UID:GID (default: the
    /// container's).
    #[arg(short, long)]
    pub user: Option<String>,
    /// With -t: send this terminal's keystrokes (without -t, stdin is
    /// always passed on).
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a pseudo-terminal of its own.
    #[arg(short, long)]
    pub tty: bool,
    /// The command and its arguments.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

// Hardening of the command (Docker's spelling; docs/security.md).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Security (docs/security.md)")]
pub struct SecurityArgs {
    /// Add a capability to the default set: NAME or CAP_NAME, or ALL
    /// (repeatable, or comma-separated).
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set: NAME or CAP_NAME, or ALL
    /// (repeatable, or comma-separated).
    #[arg(long, value_name = "CAP", value_delimiter = ',')]
    pub cap_drop: Vec<String>,
    /// Never let the command gain privileges through execve (setuid bits,
    /// file capabilities): PR_SET_NO_NEW_PRIVS.
    #[arg(long)]
    pub no_new_privileges: bool,
    /// A resource limit TYPE=SOFT[:HARD], e.g. nofile=1024:4096 or
    /// core=unlimited (repeatable).
    #[arg(long, value_name = "TYPE=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// seccomp=FILE.json (Docker's profile format), seccomp=unconfined, or
    /// no-new-privileges (repeatable).
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Allow a host device: HOST[:CONTAINER][:rwm] (repeatable; the
    /// cgroups/devices isolator denies every other one but Mesos's
    /// default list).
    #[arg(long, value_name = "HOST[:CONTAINER][:rwm]")]
    pub device: Vec<String>,
    /// Size of the container's private /dev/shm (it needs an IPC namespace
    /// of its own), Docker's syntax: a number and b, k, m or g, e.g. 256m.
    #[arg(long, value_name = "SIZE", value_parser = parse_shm_size)]
    pub shm_size: Option<u64>,
}

/// Docker's `--shm-size`: an integer and an optional unit `b`, `k`, `m`,
/// `g` (powers of 1024, also `kb`, `mb`, `gb`, any case); bytes without
/// one. At most 1 TiB.
fn parse_shm_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let factor: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return Err(format!("expected a size such as 64m or 1g, found {text:?}")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| (1..=1 << 40).contains(n))
        .ok_or_else(|| format!("expected a size from 1b to 1024g, found {text:?}"))
}

const IMAGES: &str = "Images";
const NESTED: &str = "Nested containers";
const NETWORK: &str = "Network and volumes";
const DOCKER_ONLY: &str = "Docker containers only (--docker-image)";

// Options of the Docker containerizer (`phobos run --docker-image`).
// Plain comments on flattened argument groups: with `defer`, a doc comment
// here would replace the subcommand's own description in `--help`.
#[derive(Args, Debug, Clone, Default)]
pub struct DockerArgs {
    /// Run the command in a Docker container of this image (the Docker
    /// containerizer; needs a Docker engine at `docker_socket`).
    #[arg(long, value_name = "IMAGE", conflicts_with = "image", help_heading = IMAGES)]
    pub docker_image: Option<String>,
    /// An image for the Mesos containerizer (its root filesystem, from the
    /// image store, pulled when missing: `busybox`, `host:5000/app:1`);
    /// `docker:///IMAGE` selects the Docker containerizer instead.
    #[arg(long, value_name = "REF", help_heading = IMAGES)]
    pub image: Option<String>,
    /// Publish a container port: HOST:CONTAINER[/tcp|udp|sctp] (repeatable)
    /// through the first --network that maps ports (the built-in `phobos`
    /// does; Docker: bridge or a user network). Refused where the
    /// containerizer cannot publish ports (the posix launcher).
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "HOST:CONTAINER[/PROTO]",
        help_heading = NETWORK
    )]
    pub publish: Vec<String>,
    /// Network: host (the Mesos default), none (only lo) or a CNI network
    /// such as the built-in `phobos`, repeatable (eth0, eth1, …); Docker:
    /// host, bridge, none or a network name, once. Refused where the
    /// containerizer cannot join it (the posix launcher).
    #[arg(long, value_name = "NETWORK", help_heading = NETWORK)]
    pub network: Vec<String>,
    /// Bind-mount a host path: HOST:CONTAINER[:ro|:rw] (repeatable); with
    /// --rootfs a relative HOST is a directory in the sandbox. Refused
    /// where the containerizer cannot mount it (so far: Mesos containers
    /// without --rootfs).
    #[arg(
        short = 'v',
        long = "volume",
        value_name = "HOST:CONTAINER[:ro]",
        help_heading = NETWORK
    )]
    pub volume: Vec<String>,
    /// A docker-run flag as Mesos's DockerInfo.parameters: KEY=VALUE, e.g.
    /// `--docker-param memory-swappiness=0` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", help_heading = DOCKER_ONLY)]
    pub docker_param: Vec<String>,
    /// Pull the image even when it is present (DockerInfo.force_pull_image).
    #[arg(long, help_heading = DOCKER_ONLY)]
    pub force_pull: bool,
    /// Run the container privileged (DockerInfo.privileged).
    #[arg(long, help_heading = DOCKER_ONLY)]
    pub privileged: bool,
}

// Requests and limits, parsed by `resource_args` (so a bad value is one
// line naming the option, exit 2).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Resources")]
pub struct ResourceArgs {
    /// CPU request: cpu.shares = max(1024 × CPUS, 2) (cpu.weight on v2).
    #[arg(long, value_name = "CPUS", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Memory request in MB: the soft limit, and the hard limit when no
    /// --mem-limit is given (at least 32 MB).
    #[arg(long, value_name = "MB", allow_hyphen_values = true)]
    pub mem: Option<String>,
    /// CPU limit (a CFS quota of 100 ms × CPUS per 100 ms); "inf" for none.
    #[arg(long, value_name = "CPUS", allow_hyphen_values = true)]
    pub cpus_limit: Option<String>,
    /// Memory hard limit in MB; "inf" for none.
    #[arg(long, value_name = "MB", allow_hyphen_values = true)]
    pub mem_limit: Option<String>,
    /// Most processes and threads (pids.max).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
}

// Mesos agent flags for the resource isolators, checkpointed per container.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Isolator flags (Mesos agent flags)")]
pub struct IsolatorFlagArgs {
    /// Enforce the CPU request as a CFS quota (Mesos --cgroups_enable_cfs).
    #[arg(long)]
    pub cgroups_enable_cfs: bool,
    /// Limit memory + swap to the hard limit (Mesos --cgroups_limit_swap).
    #[arg(long)]
    pub cgroups_limit_swap: bool,
    /// End the container when its sandbox exceeds --disk
    /// (Mesos --enforce_container_disk_quota).
    #[arg(long)]
    pub enforce_container_disk_quota: bool,
    /// How often init measures the sandbox, e.g. 15s, 500ms
    /// (Mesos --container_disk_watch_interval; default from the config, 15s).
    #[arg(long, value_name = "DURATION")]
    pub container_disk_watch_interval: Option<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The running container's ID.
    pub id: String,
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Allow lowering the memory hard limit (may OOM-kill the task).
    #[arg(long)]
    pub force: bool,
}

/// `phobos top`'s options.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Seconds between refreshes.
    #[arg(
        short = 'd',
        long = "delay",
        value_name = "SECS",
        default_value_t = 1.0
    )]
    pub delay: f64,
    /// Stop after this many refreshes.
    #[arg(short = 'n', long = "iterations", value_name = "ITER")]
    pub iterations: Option<u64>,
    /// Print plain frames instead of the full-screen view (also when
    /// stdout is not a terminal).
    #[arg(short = 'b', long)]
    pub batch: bool,
    /// Only containers whose ID starts with PREFIX.
    #[arg(long, value_name = "PREFIX")]
    pub filter: Option<String>,
    /// The column to sort by.
    #[arg(short = 's', long, value_enum, default_value = "cpu")]
    pub sort: crate::commands::SortKey,
    /// Reverse the sort order.
    #[arg(short = 'r', long)]
    pub reverse: bool,
}
