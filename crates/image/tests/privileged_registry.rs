//! Pulls from real registries: Debian's docker-registry started by
//! scripts/registry-test-setup.sh (plain and htpasswd basic auth) and, for
//! Bearer tokens, one started here behind a token issuer that signs JWTs
//! with a key made by openssl; test images pushed with skopeo. Bad input
//! against small HTTP servers on 127.0.0.1 that misbehave on purpose.
//! Unpacking writes whiteouts and owners, so these run as root.

mod common;

#[path = "privileged_registry/faults.rs"]
mod faults;
#[path = "privileged_registry/token.rs"]
mod token;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use common::{E, layer, test_layers};
use phobos_core::ContainerId;
use phobos_image::{
    Backend, Credentials, Error, Event, Progress, Provisioner, PullSettings, Quiet, Reference,
    Store, pull,
};

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("skipping: needs root");
    }
    euid == 0
}

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts");
/// The most a test waits for a registry to start or answer a read (the
/// machine may be loaded); every wait ends as soon as its condition holds.
const PATIENCE: Duration = Duration::from_secs(120);

/// The registries of scripts/registry-test-setup.sh: those of
/// $PHOBOS_TEST_REGISTRY_DIR (scripts/test.sh), or our own.
struct Registries {
    env: HashMap<String, String>,
    own: Option<PathBuf>,
}

impl Registries {
    fn get() -> Registries {
        if let Ok(dir) = std::env::var("PHOBOS_TEST_REGISTRY_DIR")
            && let Ok(text) = std::fs::read_to_string(Path::new(&dir).join("env"))
        {
            return Registries {
                env: parse_env(&text),
                own: None,
            };
        }
        let dir =
            std::env::temp_dir().join(format!("phobos-registry-{}", uuid::Uuid::new_v4().simple()));
        // One retry: the machine is shared and the engine may be busy.
        let mut out = Command::new(format!("{SCRIPTS}/registry-test-setup.sh"))
            .arg(&dir)
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "registry set-up failed once: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = Command::new(format!("{SCRIPTS}/registry-test-teardown.sh"))
                .arg(&dir)
                .status();
            out = Command::new(format!("{SCRIPTS}/registry-test-setup.sh"))
                .arg(&dir)
                .output()
                .unwrap();
        }
        if !out.status.success() {
            let _ = Command::new(format!("{SCRIPTS}/registry-test-teardown.sh"))
                .arg(&dir)
                .status();
            panic!(
                "registry set-up failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = std::fs::read_to_string(dir.join("env")).unwrap();
        Registries {
            env: parse_env(&text),
            own: Some(dir),
        }
    }

    fn plain(&self) -> &str {
        &self.env["PHOBOS_TEST_REGISTRY"]
    }

    fn basic(&self) -> &str {
        &self.env["PHOBOS_TEST_REGISTRY_AUTH"]
    }

    fn creds(&self) -> String {
        format!(
            "{}:{}",
            self.env["PHOBOS_TEST_REGISTRY_USER"], self.env["PHOBOS_TEST_REGISTRY_PASSWORD"]
        )
    }
}

impl Drop for Registries {
    fn drop(&mut self) {
        if let Some(dir) = &self.own {
            let _ = Command::new(format!("{SCRIPTS}/registry-test-teardown.sh"))
                .arg(dir)
                .status();
        }
    }
}

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Pushes an OCI layout's image (tagged `tag`) with skopeo.
fn push(layout: &Path, tag: &str, dest: &str, creds: Option<&str>) {
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "copy",
        "-q",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{dest}"),
        "--dest-tls-verify=false",
    ]);
    if let Some(c) = creds {
        cmd.args(["--dest-creds", c]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "skopeo push to {dest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn layout(t: &Path, name: &str, layers: &[Vec<u8>]) -> PathBuf {
    let dir = t.join(name);
    common::oci_layout(
        &dir,
        layers,
        serde_json::json!({"Entrypoint": ["/bin/tool"], "Cmd": ["-v"], "Env": ["A=1"], "WorkingDir": "/opq"}),
        "v1",
    );
    dir
}

fn settings() -> PullSettings {
    PullSettings {
        timeout: PATIENCE,
        ..PullSettings::default()
    }
}

#[derive(Default)]
struct Fetched(Mutex<Vec<String>>);

impl Progress for Fetched {
    fn event(&self, e: Event) {
        if let Event::LayerDone {
            digest,
            fetched: true,
        } = e
        {
            self.0.lock().unwrap().push(digest.to_string());
        }
    }
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn privileged_pull_a_multi_layer_image_and_provision_it() {
    if !root() {
        return;
    }
    let regs = Registries::get();
    let t = tempfile::tempdir().unwrap();
    let dir = layout(t.path(), "img", &test_layers());
    let name = format!("{}/phobos/multi:v1", regs.plain());
    push(&dir, "v1", &name, None);
    let store = Store::open(t.path().join("store")).unwrap();
    let reference = Reference::parse(&name).unwrap();
    let fetched = Fetched::default();
    let image = pull(&store, &reference, &settings(), &fetched).unwrap();
    assert_eq!(fetched.0.lock().unwrap().len(), 2);
    assert_eq!(image.config.entrypoint, Some(vec!["/bin/tool".to_string()]));
    assert_eq!(image.config.cmd, Some(vec!["-v".to_string()]));
    assert_eq!(image.config.env, Some(vec!["A=1".to_string()]));
    let prov = Provisioner::new(
        store.clone(),
        t.path().join("provisioner"),
        Backend::Overlay,
    );
    let id = ContainerId::new("pulled").unwrap();
    let rootfs = prov.provision(&id, &image).unwrap();
    assert!(!rootfs.join("gone").exists());
    assert_eq!(std::fs::read(rootfs.join("replaced")).unwrap(), b"new");
    assert_eq!(
        std::fs::read_link(rootfs.join("sh-link")).unwrap(),
        Path::new("/bin/tool")
    );
    prov.destroy(&id).unwrap();

    // Again: nothing fetched. By digest: the same image.
    let again = Fetched::default();
    pull(&store, &reference, &settings(), &again).unwrap();
    assert!(again.0.lock().unwrap().is_empty());
    let pinned =
        Reference::parse(&format!("{}/phobos/multi@{}", regs.plain(), image.digest)).unwrap();
    assert_eq!(
        pull(&store, &pinned, &settings(), &Quiet).unwrap().digest,
        image.digest
    );

    // A second image sharing the base layer: only its new layer comes.
    let extra = layer(&[E::File("extra", 0o644, b"e")]);
    let dir2 = layout(t.path(), "img2", &[test_layers()[0].clone(), extra]);
    let name2 = format!("{}/phobos/multi2:v1", regs.plain());
    push(&dir2, "v1", &name2, None);
    let second = Fetched::default();
    pull(
        &store,
        &Reference::parse(&name2).unwrap(),
        &settings(),
        &second,
    )
    .unwrap();
    assert_eq!(second.0.lock().unwrap().len(), 1);
}

#[test]
fn privileged_basic_auth_needs_credentials_from_the_docker_config() {
    if !root() {
        return;
    }
    let regs = Registries::get();
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let reference = Reference::parse(&format!("{}/phobos/busybox:local", regs.basic())).unwrap();
    let err = pull(&store, &reference, &settings(), &Quiet).unwrap_err();
    assert!(matches!(err, Error::Registry { .. }), "{err}");
    assert!(err.to_string().contains("no credentials for"), "{err}");
    let auth = base64::engine::general_purpose::STANDARD.encode(regs.creds());
    let config = t.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
            regs.basic()
        ),
    )
    .unwrap();
    let with = PullSettings {
        credentials: Credentials::from_setting(config.to_str().unwrap()).unwrap(),
        ..settings()
    };
    let image = pull(&store, &reference, &with, &Quiet).unwrap();
    assert!(image.layers[0].join("bin/busybox").is_file());
    // Wrong password: one line naming the registry.
    let bad = PullSettings {
        credentials: Credentials::from_json(
            &format!(
                r#"{{"auths":{{"{}":{{"username":"phobos","password":"no"}}}}}}"#,
                regs.basic()
            ),
            "t",
        )
        .unwrap(),
        ..settings()
    };
    let store2 = Store::open(t.path().join("store2")).unwrap();
    let err = pull(&store2, &reference, &bad, &Quiet).unwrap_err();
    assert!(
        err.to_string().contains(regs.basic()) && err.to_string().contains("401"),
        "{err}"
    );
}

#[test]
fn privileged_hostile_layers_are_refused_on_pull() {
    if !root() {
        return;
    }
    let regs = Registries::get();
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let out = outside.to_str().unwrap();
    let cases = [
        (
            "traversal",
            layer(&[E::File(
                "../../../../../../../../../../tmp/phobos-evil",
                0o644,
                b"x",
            )]),
        ),
        (
            "symlink",
            layer(&[E::Symlink("etc", out), E::File("etc/evil", 0o644, b"x")]),
        ),
        ("hardlink", layer(&[E::Hardlink("stolen", "/etc/passwd")])),
    ];
    for (i, (what, tar)) in cases.into_iter().enumerate() {
        let dir = layout(t.path(), &format!("evil{i}"), &[tar]);
        let name = format!("{}/phobos/evil{i}:v1", regs.plain());
        push(&dir, "v1", &name, None);
        let store = Store::open(t.path().join(format!("store{i}"))).unwrap();
        let err = pull(
            &store,
            &Reference::parse(&name).unwrap(),
            &settings(),
            &Quiet,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Hostile { .. }), "{what}: {err}");
        assert!(store.records().unwrap().is_empty());
        assert_eq!(
            count(&store.root().join("layers")) + count(&store.root().join("staging")),
            0,
            "{what}"
        );
        assert_eq!(count(&outside), 0, "{what} wrote outside");
    }
    assert!(!Path::new("/tmp/phobos-evil").exists());
}

#[test]
fn privileged_full_disk_leaves_no_partial_layer_and_the_next_pull_works() {
    if !root() {
        return;
    }
    let regs = Registries::get();
    let t = tempfile::tempdir().unwrap();
    // One 3 MB layer.
    let mut noise = vec![0u8; 3 << 20];
    for (i, chunk) in noise.chunks_mut(16).enumerate() {
        chunk.copy_from_slice(&phobos_image::Digest::of(&i.to_le_bytes()).hex().as_bytes()[..16]);
    }
    let dir = layout(
        t.path(),
        "big",
        &[layer(&[E::File("noise", 0o644, &noise)])],
    );
    let name = format!("{}/phobos/big:v1", regs.plain());
    push(&dir, "v1", &name, None);
    let mnt = t.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let store = Store::open(mnt.join("store")).unwrap();
    let reference = Reference::parse(&name).unwrap();
    let err = pull(&store, &reference, &settings(), &Quiet).unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert!(!err.to_string().contains('\n'));
    assert_eq!(
        count(&store.root().join("layers")) + count(&store.root().join("staging")),
        0
    );
    assert!(store.records().unwrap().is_empty());
    let ok = Command::new("mount")
        .args(["-o", "remount,size=16m", mnt.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(ok.success());
    let image = pull(&store, &reference, &settings(), &Quiet).unwrap();
    assert_eq!(std::fs::read(image.layers[0].join("noise")).unwrap(), noise);
}

#[test]
fn privileged_separate_processes_pulling_at_once_fetch_each_layer_once() {
    if !root() {
        return;
    }
    let regs = Registries::get();
    let t = tempfile::tempdir().unwrap();
    let dir = layout(t.path(), "img", &test_layers());
    let name = format!("{}/phobos/concurrent:v1", regs.plain());
    push(&dir, "v1", &name, None);
    let bin = env!("CARGO_MANIFEST_DIR").to_string() + "/../../target";
    let Some(phobos) = find_phobos(Path::new(&bin)) else {
        eprintln!("skipping: no phobos binary built");
        return;
    };
    let work = t.path().join("work");
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&phobos)
                .args([
                    "--work-dir",
                    work.to_str().unwrap(),
                    "--config",
                    "/dev/null",
                    "image",
                    "pull",
                    &name,
                ])
                .env("RUST_LOG", "info")
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut fetched = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        fetched += err
            .lines()
            // `image pull`'s plain progress lines (stderr is no terminal).
            .filter(|l| l.starts_with("phobos: layer ") && l.contains(" fetched ("))
            .count();
    }
    assert_eq!(
        fetched, 2,
        "each of the 2 layers fetched exactly once across 3 processes"
    );
}

/// The newest `phobos` binary under target/ (built with the workspace).
fn find_phobos(target: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = [
        "debug/phobos",
        "x86_64-unknown-linux-gnu/debug/phobos",
        "aarch64-unknown-linux-gnu/debug/phobos",
    ]
    .iter()
    .map(|p| target.join(p))
    .filter(|p| p.is_file())
    .collect();
    found.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    found.pop()
}

/// One HTTP request's path and headers (lower-cased names), for the
/// servers the tests run themselves.
fn read_head(stream: &mut std::net::TcpStream) -> (String, HashMap<String, String>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    (path, headers)
}

fn respond(stream: &mut std::net::TcpStream, status: u16, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}
