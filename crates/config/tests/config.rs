//! Loading, validation, provenance and the search order, all against an
//! injected [`Environment`] and temporary files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use phobos_config::{
    Config, ConfigError, ContainerLogger, Containerizer, EcpTermination, Environment, KEYS,
    Launcher, LoadedConfig, LogDestination, LogFormat, LogLevel, Source, find_config_file, load,
    parse_str,
};

fn root_env(dir: &Path) -> Environment {
    Environment {
        uid: 0,
        home: Some(PathBuf::from("/root")),
        xdg_runtime_dir: None,
        phobos_config: None,
        system_config: dir.join("etc/phobos/phobos.toml"),
    }
}

fn user_env(dir: &Path) -> Environment {
    Environment {
        uid: 1000,
        home: Some(dir.join("home")),
        xdg_runtime_dir: Some(PathBuf::from("/run/user/1000")),
        phobos_config: None,
        system_config: dir.join("etc/phobos/phobos.toml"),
    }
}

fn env() -> Environment {
    root_env(Path::new("/nonexistent"))
}

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    parse_str(text, Path::new("/etc/phobos/phobos.toml"), &env())
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn root_defaults() {
    let c = Config::defaults(&env());
    assert_eq!(c.runtime_dir, Path::new("/run/phobos"));
    assert_eq!(c.work_dir, Path::new("/var/lib/phobos"));
    assert_eq!(c.isolation, ["posix/cpu", "posix/mem"]);
    assert_eq!(c.launcher, Launcher::Linux);
    assert_eq!(c.cgroups_root, "phobos");
    assert!(!c.cgroups_enable_cfs);
    assert!(!c.cgroups_limit_swap);
    assert_eq!(c.sandbox_directory, Path::new("/mnt/mesos/sandbox"));
    assert_eq!(c.default_container_image, None);
    assert_eq!(
        c.containerizers,
        [Containerizer::Mesos, Containerizer::Docker]
    );
    assert_eq!(c.docker, "docker");
    assert_eq!(c.docker_socket, Path::new("/var/run/docker.sock"));
    assert_eq!(c.docker_stop_timeout, Duration::ZERO);
    assert!(c.docker_kill_orphans);
    assert_eq!(c.docker_remove_delay, Duration::ZERO);
    assert_eq!(c.container_disk_watch_interval, Duration::from_secs(15));
    assert!(!c.enforce_container_disk_quota);
    assert_eq!(c.ecp_termination, EcpTermination::V0_26);
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(c.log.format, LogFormat::Human);
    assert_eq!(c.log.destination, LogDestination::Stderr);
}

#[test]
fn non_root_defaults() {
    let dir = Path::new("/x");
    let c = Config::defaults(&user_env(dir));
    assert_eq!(c.runtime_dir, Path::new("/run/user/1000/phobos"));
    assert_eq!(c.work_dir, Path::new("/x/home/.local/share/phobos"));
    assert_eq!(c.launcher, Launcher::Posix);

    let bare = Environment {
        uid: 1234,
        home: None,
        xdg_runtime_dir: None,
        phobos_config: None,
        system_config: PathBuf::from("/nonexistent"),
    };
    let c = Config::defaults(&bare);
    assert_eq!(c.runtime_dir, Path::new("/tmp/phobos-1234/run"));
    assert_eq!(c.work_dir, Path::new("/tmp/phobos-1234/work"));
}

#[test]
fn empty_file_is_all_defaults() {
    let loaded = parse("").unwrap();
    assert_eq!(loaded.config, Config::defaults(&env()));
    assert!(loaded.entries().iter().all(|e| e.source == Source::Default));
}

#[test]
fn every_key_is_read() {
    let text = r#"
runtime_dir = "/r"
work_dir = "/w"
isolation = "cgroups/cpu, cgroups/mem,filesystem/linux"
launcher = "posix"
cgroups_root = "mesos/agent"
cgroups_driver = "systemd"
cgroups_enable_cfs = true
cgroups_limit_swap = true
sandbox_directory = "/sandbox"
default_container_image = "docker:///busybox"
containerizers = "docker"
docker = "/usr/bin/docker"
docker_socket = "/d.sock"
docker_stop_timeout = "10secs"
docker_kill_orphans = false
docker_remove_delay = "5mins"
container_disk_watch_interval = "100ms"
enforce_container_disk_quota = true
ecp_termination = "0.19"
image_providers = "docker"
image_provisioner_backend = "copy"
docker_registry = "http://127.0.0.1:5000"
docker_store_dir = "/s"
docker_config = "/c.json"
docker_insecure_registries = "a.lan:5000,b.lan"
container_logger = "sandbox"
default_container_shm_size = "32MB"
cgroups_net_cls_primary_handle = "0x12"
cgroups_net_cls_secondary_handles = "0x10,0x1f"

[logrotate]
max_stdout_size = "512KB"
max_stderr_size = 1048576
max_files = 3

[log]
level = "debug"
format = "json"
destination = "journald"
"#;
    let c = parse(text).unwrap().config;
    assert_eq!(c.runtime_dir, Path::new("/r"));
    assert_eq!(c.work_dir, Path::new("/w"));
    assert_eq!(
        c.isolation,
        ["cgroups/cpu", "cgroups/mem", "filesystem/linux"]
    );
    assert_eq!(c.launcher, Launcher::Posix);
    assert_eq!(c.cgroups_root, "mesos/agent");
    assert_eq!(c.cgroups_driver, phobos_config::CgroupsDriver::Systemd);
    assert!(c.cgroups_enable_cfs);
    assert!(c.cgroups_limit_swap);
    assert_eq!(c.sandbox_directory, Path::new("/sandbox"));
    assert_eq!(
        c.default_container_image.as_deref(),
        Some("docker:///busybox")
    );
    assert_eq!(c.containerizers, [Containerizer::Docker]);
    assert_eq!(c.docker, "/usr/bin/docker");
    assert_eq!(c.docker_socket, Path::new("/d.sock"));
    assert_eq!(c.docker_stop_timeout, Duration::from_secs(10));
    assert!(!c.docker_kill_orphans);
    assert_eq!(c.docker_remove_delay, Duration::from_secs(300));
    assert_eq!(c.container_disk_watch_interval, Duration::from_millis(100));
    assert!(c.enforce_container_disk_quota);
    assert_eq!(c.ecp_termination, EcpTermination::V0_19);
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.destination, LogDestination::Journald);
    assert_eq!(c.container_logger, ContainerLogger::Sandbox);
    assert_eq!(c.default_container_shm_size, Some(32 << 20));
    assert_eq!(c.cgroups_net_cls_primary_handle, Some(0x12));
    assert_eq!(c.cgroups_net_cls_secondary_handles, (0x10, 0x1f));
    assert_eq!(c.logrotate.max_stdout_size, 512 << 10);
    assert_eq!(c.logrotate.max_stderr_size, 1 << 20);
    assert_eq!(c.logrotate.max_files, 3);
}

#[test]
fn logrotate_defaults_are_generous_and_bad_limits_are_refused() {
    let c = parse("").unwrap().config;
    assert_eq!(c.container_logger, ContainerLogger::Logrotate);
    assert_eq!(c.logrotate.max_stdout_size, 10 << 20);
    assert_eq!(c.logrotate.max_files, 10);
    let cases: &[(&str, &str)] = &[
        (
            "[logrotate]\nmax_files = 0",
            "logrotate.max_files: 0 files would keep no log at all",
        ),
        (
            "[logrotate]\nmax_stdout_size = \"10XB\"",
            "invalid value \"10XB\" for logrotate.max_stdout_size",
        ),
        (
            "[logrotate]\nmax_stdout_size = -1",
            "invalid value -1 for logrotate.max_stdout_size",
        ),
        (
            "[logrotate]\nmax_stdout_size = \"\"",
            "invalid value \"\" for logrotate.max_stdout_size",
        ),
        (
            "[logrotate]\nmax_stderr_size = \"99999999999999TB\"",
            "invalid value \"99999999999999TB\" for logrotate.max_stderr_size",
        ),
        (
            "[logrotate]\nmax_stderr_size = \"1KB\"",
            "smaller than one page",
        ),
        (
            "container_logger = \"journald\"",
            "invalid value \"journald\" for container_logger: expected one of \"logrotate\", \"sandbox\"",
        ),
    ];
    for (text, expected) in cases {
        let e = err(text);
        assert!(e.contains(expected), "{text}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

#[test]
fn lists_accept_arrays_and_strings() {
    let c = parse(r#"isolation = ["cgroups/cpu", "cgroups/mem"]"#)
        .unwrap()
        .config;
    assert_eq!(c.isolation, ["cgroups/cpu", "cgroups/mem"]);
    let c = parse(r#"isolation = """#).unwrap().config;
    assert!(c.isolation.is_empty());
    let c = parse(r#"containerizers = ["docker", "mesos"]"#)
        .unwrap()
        .config;
    assert_eq!(
        c.containerizers,
        [Containerizer::Docker, Containerizer::Mesos]
    );
    let c = parse(r#"containerizers = "mesos,docker""#).unwrap().config;
    assert_eq!(
        c.containerizers,
        [Containerizer::Mesos, Containerizer::Docker]
    );
}

#[test]
fn provenance_names_file_and_line() {
    let loaded = parse("\n# comment\nlauncher = \"posix\"\n\n[log]\nformat = \"json\"\n").unwrap();
    let file = |line| Source::File {
        path: PathBuf::from("/etc/phobos/phobos.toml"),
        line,
    };
    assert_eq!(loaded.source("launcher"), Some(&file(3)));
    assert_eq!(loaded.source("log.format"), Some(&file(6)));
    assert_eq!(loaded.source("work_dir"), Some(&Source::Default));
    assert_eq!(loaded.source("nope"), None);
    assert_eq!(file(3).to_string(), "/etc/phobos/phobos.toml:3");

    let entries = loaded.entries();
    assert_eq!(entries.len(), KEYS.len());
    let launcher = entries.iter().find(|e| e.key == "launcher").unwrap();
    assert_eq!(launcher.value, "posix");
    assert_eq!(launcher.source, file(3));
}

#[test]
fn overrides_win_and_are_recorded() {
    let mut loaded = parse("docker_stop_timeout = \"1secs\"\n").unwrap();
    loaded
        .apply_override("docker_stop_timeout", "10secs")
        .unwrap();
    loaded
        .apply_override("isolation", "cgroups/cpu,cgroups/mem")
        .unwrap();
    loaded.apply_override("cgroups_enable_cfs", "true").unwrap();
    loaded.apply_override("log.level", "trace").unwrap();
    let c = &loaded.config;
    assert_eq!(c.docker_stop_timeout, Duration::from_secs(10));
    assert_eq!(c.isolation, ["cgroups/cpu", "cgroups/mem"]);
    assert!(c.cgroups_enable_cfs);
    assert_eq!(c.log.level, LogLevel::Trace);
    for key in [
        "docker_stop_timeout",
        "isolation",
        "cgroups_enable_cfs",
        "log.level",
    ] {
        assert_eq!(loaded.source(key), Some(&Source::CommandLine), "{key}");
    }
    assert_eq!(Source::CommandLine.to_string(), "command line");
}

#[test]
fn bad_overrides_are_refused_and_leave_the_value() {
    let mut loaded = parse("").unwrap();
    let e = loaded.apply_override("isolaton", "x").unwrap_err();
    assert!(matches!(e, ConfigError::UnknownKey { .. }));
    assert_eq!(
        e.to_string(),
        "command line: unknown config key \"isolaton\""
    );

    let e = loaded
        .apply_override("docker_kill_orphans", "yes")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "command line: invalid value \"yes\" for docker_kill_orphans: expected true or false"
    );
    let e = loaded
        .apply_override("docker_remove_delay", "soon")
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("command line: invalid value \"soon\" for docker_remove_delay: ")
    );
    assert!(loaded.config.docker_kill_orphans);
    assert_eq!(loaded.source("docker_remove_delay"), Some(&Source::Default));
}

#[test]
fn unknown_keys_name_file_line_and_key() {
    let e = parse("launcher = \"posix\"\nisolaton = \"cgroups/cpu\"\n").unwrap_err();
    match &e {
        ConfigError::Parse { line, key, .. } => {
            assert_eq!(*line, Some(2));
            assert_eq!(key.as_deref(), Some("isolaton"));
        }
        other => panic!("expected Parse, got {other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with("/etc/phobos/phobos.toml:2: isolaton: unknown field `isolaton`"),
        "{e}"
    );

    let e = parse("[log]\nlevel = \"info\"\nlevle = \"debug\"\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/phobos/phobos.toml:3: log.levle: unknown field `levle`"),
        "{e}"
    );

    let e = parse("[logging]\nlevel = \"info\"\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `logging`"), "{e}");
}

#[test]
fn syntax_errors_name_the_line() {
    let e = parse("launcher = \"posix\"\nwork_dir = \n").unwrap_err();
    assert!(
        matches!(e, ConfigError::Parse { line: Some(2), .. }),
        "{e:?}"
    );
    let e = parse("log = 5\n").unwrap_err();
    assert!(
        matches!(e, ConfigError::Parse { line: Some(1), .. }),
        "{e:?}"
    );
}

#[test]
fn bad_values_name_file_line_key_and_value() {
    let cases: &[(&str, &str)] = &[
        (
            "runtime_dir = \"run/phobos\"",
            "invalid value \"run/phobos\" for runtime_dir: expected an absolute path",
        ),
        (
            "work_dir = 5",
            "invalid value 5 for work_dir: expected a string, found integer",
        ),
        (
            "work_dir = \"\"",
            "invalid value \"\" for work_dir: expected a non-empty string",
        ),
        (
            "isolation = 3",
            "invalid value 3 for isolation: expected a comma-separated string or an array of strings, found integer",
        ),
        (
            "isolation = \"a,,b\"",
            "invalid value \"a,,b\" for isolation: empty name in list",
        ),
        (
            "isolation = [\"a\", 1]",
            "invalid value [\"a\", 1] for isolation: expected an array of strings",
        ),
        (
            "launcher = \"systemd\"",
            "invalid value \"systemd\" for launcher: expected one of \"linux\", \"posix\"",
        ),
        (
            "cgroups_root = \"/phobos\"",
            "invalid value \"/phobos\" for cgroups_root: expected a relative cgroup path such as \"phobos\"",
        ),
        (
            "cgroups_root = \"a/../b\"",
            "invalid value \"a/../b\" for cgroups_root: expected a relative cgroup path such as \"phobos\"",
        ),
        (
            "cgroups_driver = \"system\"",
            "invalid value \"system\" for cgroups_driver: expected one of \"cgroupfs\", \"systemd\"",
        ),
        (
            "cgroups_hierarchy = \"/sys/fs/cgroup\"",
            "invalid value \"/sys/fs/cgroup\" for cgroups_hierarchy: not used: Phobos finds every cgroup hierarchy in /proc/self/mountinfo; remove this key",
        ),
        (
            "cgroups_enable_cfs = \"yes\"",
            "invalid value \"yes\" for cgroups_enable_cfs: expected true or false, found string",
        ),
        (
            "cgroups_limit_swap = 1",
            "invalid value 1 for cgroups_limit_swap: expected true or false, found integer",
        ),
        (
            "sandbox_directory = \"mnt\"",
            "invalid value \"mnt\" for sandbox_directory: expected an absolute path",
        ),
        (
            "default_container_image = \"\"",
            "invalid value \"\" for default_container_image: expected a non-empty string",
        ),
        (
            "network_cni_config_dir = \"cni\"",
            "invalid value \"cni\" for network_cni_config_dir: expected an absolute path",
        ),
        (
            "network_cni_plugins_dir = \"/usr/lib/cni:bin\"",
            "invalid value \"/usr/lib/cni:bin\" for network_cni_plugins_dir: expected absolute directories separated by ':' such as \"/usr/lib/cni\"",
        ),
        (
            "default_network_subnet = \"10.77.0.1/16\"",
            "invalid value \"10.77.0.1/16\" for default_network_subnet: host bits are set; give the network address",
        ),
        (
            "default_network_bridge = \"phobos-bridge-00\"",
            "invalid value \"phobos-bridge-00\" for default_network_bridge: expected an interface name of 1 to 15 bytes",
        ),
        (
            "default_network_bridge = \"br 0\"",
            "invalid value \"br 0\" for default_network_bridge: an interface name has only letters, digits, '_', '.' and '-'",
        ),
        (
            "cgroups_net_cls_primary_handle = \"0x0\"",
            "invalid value \"0x0\" for cgroups_net_cls_primary_handle: expected a handle from 0x1 to 0xffff, found \"0x0\"",
        ),
        (
            "cgroups_net_cls_primary_handle = \"18\"",
            "invalid value \"18\" for cgroups_net_cls_primary_handle: expected a hexadecimal handle such as \"0x12\", found \"18\"",
        ),
        (
            "cgroups_net_cls_secondary_handles = \"0x20,0x10\"",
            "invalid value \"0x20,0x10\" for cgroups_net_cls_secondary_handles: the range 0x20,0x10 is empty",
        ),
        (
            "default_container_shm_size = \"1KB\"",
            "invalid value \"1KB\" for default_container_shm_size: 1KB is smaller than one page (4KB), the least a /dev/shm may hold",
        ),
        (
            "default_container_shm_size = \"lots\"",
            "invalid value \"lots\" for default_container_shm_size: expected a size such as \"10MB\" or \"2GB\" (an integer and B, KB, MB, GB or TB), found \"lots\"",
        ),
        (
            "containerizers = \"external\"",
            "invalid value \"external\" for containerizers: unknown containerizer \"external\": expected \"mesos\" or \"docker\"",
        ),
        (
            "containerizers = []",
            "invalid value [] for containerizers: expected at least one containerizer",
        ),
        (
            "containerizers = \"docker,docker\"",
            "invalid value \"docker,docker\" for containerizers: containerizer \"docker\" is listed twice",
        ),
        (
            "docker = false",
            "invalid value false for docker: expected a string, found boolean",
        ),
        (
            "docker_socket = \"docker.sock\"",
            "invalid value \"docker.sock\" for docker_socket: expected an absolute path",
        ),
        (
            "docker_stop_timeout = \"10\"",
            "invalid value \"10\" for docker_stop_timeout: missing unit: expected a number followed by a unit, e.g. \"10secs\"",
        ),
        (
            "docker_stop_timeout = 10",
            "invalid value 10 for docker_stop_timeout: expected a string, found integer",
        ),
        (
            "docker_kill_orphans = \"true\"",
            "invalid value \"true\" for docker_kill_orphans: expected true or false, found string",
        ),
        (
            "docker_remove_delay = \"6hours\"",
            "invalid value \"6hours\" for docker_remove_delay: unknown unit \"hours\": expected ns, us, ms, secs, mins, hrs, days or weeks",
        ),
        (
            "container_disk_watch_interval = \"0secs\"",
            "invalid value \"0secs\" for container_disk_watch_interval: the interval must be greater than zero",
        ),
        (
            "enforce_container_disk_quota = \"no\"",
            "invalid value \"no\" for enforce_container_disk_quota: expected true or false, found string",
        ),
        (
            "ecp_termination = 0.26",
            "invalid value 0.26 for ecp_termination: expected the string \"0.26\" or \"0.19\" (quote it)",
        ),
        (
            "ecp_termination = \"1.0\"",
            "invalid value \"1.0\" for ecp_termination: expected one of \"0.26\", \"0.19\"",
        ),
        (
            "[log]\nlevel = \"verbose\"",
            "invalid value \"verbose\" for log.level: expected one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\"",
        ),
        (
            "[log]\nformat = \"xml\"",
            "invalid value \"xml\" for log.format: expected one of \"human\", \"json\"",
        ),
        (
            "[log]\ndestination = \"file\"",
            "invalid value \"file\" for log.destination: expected one of \"stderr\", \"syslog\", \"journald\"",
        ),
    ];
    for (text, expected) in cases {
        // Put the bad value on line 3 to check the line number.
        let e = err(&format!("# phobos\n\n{text}\n"));
        let line = 3 + text.matches('\n').count();
        assert_eq!(
            e,
            format!("/etc/phobos/phobos.toml:{line}: {expected}"),
            "{text}"
        );
    }
}

#[test]
fn every_key_is_covered_by_the_key_list() {
    let loaded = parse("").unwrap();
    for key in KEYS {
        assert!(loaded.config.get(key).is_some(), "{key} has no getter");
        assert_eq!(loaded.source(key), Some(&Source::Default), "{key}");
    }
}

#[test]
fn example_file_documents_every_key_with_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../phobos.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let loaded = parse_str(&text, &path, &env()).unwrap();
    assert_eq!(loaded.config, Config::defaults(&env()));
    for key in KEYS {
        let bare = key.rsplit('.').next().unwrap();
        assert!(
            text.lines().any(|l| l
                .trim_start_matches("# ")
                .starts_with(&format!("{bare} = "))),
            "{key} is not documented in the example"
        );
    }
}

#[test]
fn search_order_explicit_then_env_then_system_then_user() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = user_env(dir.path());
    let explicit = dir.path().join("explicit.toml");
    let from_env = dir.path().join("env.toml");
    let user = env.user_config().unwrap();
    let system = env.system_config.clone();

    assert_eq!(find_config_file(None, &env).unwrap(), None);
    assert_eq!(load(None, &env).unwrap(), LoadedConfig::defaults(&env));

    write(&user, "launcher = \"posix\"\n");
    assert_eq!(find_config_file(None, &env).unwrap(), Some(user.clone()));

    write(&system, "launcher = \"linux\"\n");
    assert_eq!(find_config_file(None, &env).unwrap(), Some(system.clone()));

    write(&from_env, "docker = \"env\"\n");
    env.phobos_config = Some(from_env.clone());
    assert_eq!(
        find_config_file(None, &env).unwrap(),
        Some(from_env.clone())
    );

    write(&explicit, "docker = \"explicit\"\n");
    assert_eq!(
        find_config_file(Some(&explicit), &env).unwrap(),
        Some(explicit.clone())
    );
    let loaded = load(Some(&explicit), &env).unwrap();
    assert_eq!(loaded.config.docker, "explicit");
    assert_eq!(loaded.file.as_deref(), Some(explicit.as_path()));
    // Only the first file is read: nothing merges in from the others.
    assert_eq!(loaded.config.launcher, Launcher::Posix);
    assert_eq!(loaded.source("launcher"), Some(&Source::Default));
}

#[test]
fn root_never_reads_the_user_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = user_env(dir.path());
    env.uid = 0;
    write(&env.user_config().unwrap(), "docker = \"user\"\n");
    assert_eq!(find_config_file(None, &env).unwrap(), None);
}

#[test]
fn requested_files_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = root_env(dir.path());
    write(&env.system_config.clone(), "");
    let missing = dir.path().join("missing.toml");

    let e = load(Some(&missing), &env).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "config file {} (from --config) does not exist",
            missing.display()
        )
    );
    env.phobos_config = Some(missing.clone());
    let e = load(None, &env).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "config file {} (from $PHOBOS_CONFIG) does not exist",
            missing.display()
        )
    );
}

#[test]
fn unreadable_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory exists but cannot be read as a file.
    let e = load(Some(dir.path()), &env()).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&format!(
        "cannot read config file {}: ",
        dir.path().display()
    )));
}

#[test]
fn errors_in_loaded_files_name_the_real_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    write(&path, "\nlauncher = 1\n");
    let e = load(Some(&path), &env()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: invalid value 1 for launcher: expected a string, found integer",
            path.display()
        )
    );
}

#[test]
fn image_keys_take_mesos_flag_values() {
    let c = parse("").unwrap().config;
    assert!(c.image_providers.is_empty());
    assert_eq!(c.image_provisioner_backend, "overlay");
    assert_eq!(c.docker_registry, "https://registry-1.docker.io");
    assert_eq!(c.store_dir(), Path::new("/var/lib/phobos/store"));
    let c = parse(
        "image_providers = \"DOCKER\"\nimage_provisioner_backend = \"copy\"\n\
         docker_registry = \"http://127.0.0.1:5000\"\ndocker_store_dir = \"/srv/store\"\n\
         docker_config = \"/root/.docker/config.json\"\n\
         docker_insecure_registries = [\"reg.lan:5000\"]\n",
    )
    .unwrap()
    .config;
    assert_eq!(c.image_providers, vec!["docker"]);
    assert_eq!(c.image_provisioner_backend, "copy");
    assert_eq!(c.docker_registry, "http://127.0.0.1:5000");
    assert_eq!(c.store_dir(), Path::new("/srv/store"));
    assert_eq!(
        c.docker_config.as_deref(),
        Some("/root/.docker/config.json")
    );
    assert_eq!(c.docker_insecure_registries, vec!["reg.lan:5000"]);
    for (text, want) in [
        (
            "image_providers = \"appc\"",
            "appc images are not supported",
        ),
        (
            "image_provisioner_backend = \"aufs\"",
            "expected one of \"overlay\", \"copy\"",
        ),
        (
            "docker_registry = \"registry.lan\"",
            "expected an http:// or https:// URL",
        ),
        ("docker_store_dir = \"store\"", "expected an absolute path"),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text}: {e}");
    }
}

/// Every entry printed as `phobos config` prints it, as one file.
fn printed(loaded: &LoadedConfig) -> String {
    loaded
        .entries()
        .iter()
        .map(|e| e.toml_line() + "\n")
        .collect()
}

#[test]
fn printed_entries_load_back_to_the_same_values() {
    // Defaults (booleans of both values, an unset optional key) and a file
    // setting every key to something else.
    let defaults = parse("").unwrap();
    let text = r#"
runtime_dir = "/r un"
work_dir = "/w"
isolation = ["cgroups/cpu", "cgroups/mem"]
launcher = "posix"
cgroups_root = "mesos/agent"
cgroups_enable_cfs = true
cgroups_limit_swap = true
sandbox_directory = "/sandbox"
default_container_image = "docker:///busybox \"quoted\""
containerizers = "docker,mesos"
docker = "/usr/bin/docker"
docker_socket = "/d.sock"
docker_stop_timeout = "10secs"
docker_kill_orphans = false
docker_remove_delay = "5mins"
container_disk_watch_interval = "100ms"
enforce_container_disk_quota = true
ecp_termination = "0.19"

[log]
level = "debug"
format = "json"
destination = "journald"
"#;
    let everything = parse(text).unwrap();
    assert_ne!(everything.config, defaults.config);
    for loaded in [defaults, everything] {
        let file = printed(&loaded);
        assert!(file.contains("cgroups_enable_cfs = "), "{file}");
        assert!(
            !file.contains("= \"true\"") && !file.contains("= \"false\""),
            "{file}"
        );
        let again = parse(&file).unwrap_or_else(|e| panic!("{e}\n{file}"));
        assert_eq!(again.config, loaded.config, "{file}");
        assert_eq!(printed(&again), file);
    }
}

#[test]
fn a_duplicate_table_is_named_as_itself() {
    let e = parse("[log]\nlevel = \"info\"\n[log]\nformat = \"json\"\n").unwrap_err();
    match &e {
        ConfigError::Parse { line, key, .. } => {
            assert_eq!(*line, Some(3));
            assert_eq!(key.as_deref(), Some("log"), "{e}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
    assert!(!e.to_string().contains("log.log"), "{e}");
}

#[test]
fn later_errors_about_a_value_name_its_file_and_line() {
    let loaded = parse("launcher = \"posix\"\nisolation = \"cgroups/bogus\"\n").unwrap();
    let e = loaded.invalid(
        "isolation",
        "cgroups/bogus",
        "unknown isolator 'cgroups/bogus'",
    );
    assert_eq!(
        e.to_string(),
        "/etc/phobos/phobos.toml:2: invalid value \"cgroups/bogus\" for isolation: unknown isolator 'cgroups/bogus'"
    );
    let mut flagged = parse("").unwrap();
    flagged.apply_override("isolation", "x").unwrap();
    assert!(
        flagged
            .invalid("isolation", "x", "unknown")
            .to_string()
            .starts_with("command line: "),
    );
}

#[test]
fn relative_directories_are_refused_from_flags_as_from_files() {
    for key in ["runtime_dir", "work_dir"] {
        let mut loaded = parse("").unwrap();
        let e = loaded.apply_override(key, "relative/dir").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "command line: invalid value \"relative/dir\" for {key}: expected an absolute path"
            )
        );
        let e = parse(&format!("{key} = \"relative/dir\"\n")).unwrap_err();
        assert!(
            e.to_string().ends_with(&format!(
                "invalid value \"relative/dir\" for {key}: expected an absolute path"
            )),
            "{e}"
        );
    }
}
