//! Pulls from real registries: Debian's docker-registry started by
//! scripts/registry-test-setup.sh (plain and htpasswd basic auth) and, for
//! Bearer tokens, one started here behind a token issuer that signs JWTs
//! with a key made by openssl; test images pushed with skopeo. Bad input
//! against small HTTP servers on 127.0.0.1 that misbehave on purpose.
//! Unpacking writes whiteouts and owners, so these run as root.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        timeout: Duration::from_secs(20),
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

// ---- Bearer tokens: a registry with token auth and an issuer here ----

struct TokenIssuer {
    port: u16,
    dir: PathBuf,
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Serves GET /token?scope=…&service=…: anonymous pull of anything but
/// `private/*`, everything with phobos:phobos-test.
fn token_issuer(dir: &Path) -> TokenIssuer {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=phobos-test-token",
        ])
        .args([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let der = Command::new("openssl")
        .args(["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"])
        .output()
        .unwrap()
        .stdout;
    let x5c = base64::engine::general_purpose::STANDARD.encode(der);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("phobos:phobos-test")
    );
    let dir2 = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (path, headers) = read_head(&mut stream);
            let authorized = headers.get("authorization") == Some(&good);
            let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
            let mut access = Vec::new();
            let mut denied = false;
            for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
                if k != "scope" {
                    continue;
                }
                for scope in decode(v).split(' ') {
                    let parts: Vec<&str> = scope.split(':').collect();
                    if parts.len() != 3 {
                        continue;
                    }
                    if parts[1].starts_with("private/") && !authorized {
                        denied = true;
                    }
                    let actions: Vec<&str> = parts[2].split(',').collect();
                    access.push(
                        serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}),
                    );
                }
            }
            if denied {
                respond(&mut stream, 401, &[], b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"credentials required\"}]}");
                continue;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
            let claims = serde_json::json!({"iss": "phobos-test-issuer", "sub": "phobos", "aud": "phobos-test",
                "exp": now + 600, "nbf": now - 60, "iat": now, "jti": uuid::Uuid::new_v4().to_string(), "access": access});
            let input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let sig_in = dir2.join(format!("in-{}", uuid::Uuid::new_v4()));
            std::fs::write(&sig_in, &input).unwrap();
            let sig = Command::new("openssl")
                .args([
                    "dgst",
                    "-sha256",
                    "-sign",
                    dir2.join("key.pem").to_str().unwrap(),
                    sig_in.to_str().unwrap(),
                ])
                .output()
                .unwrap()
                .stdout;
            let token = format!("{input}.{}", b64url(&sig));
            respond(
                &mut stream,
                200,
                &[],
                serde_json::json!({"token": token}).to_string().as_bytes(),
            );
        }
    });
    TokenIssuer {
        port,
        dir: dir.to_path_buf(),
    }
}

fn decode(v: &str) -> String {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

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

/// A child process killed and reaped when dropped.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_token_registry(issuer: &TokenIssuer) -> (Reaped, String) {
    let config = issuer.dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n\
             auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: phobos-test\n    issuer: phobos-test-issuer\n    rootcertbundle: {}\n",
            issuer.dir.join("data").display(),
            issuer.port,
            issuer.dir.join("cert.pem").display()
        ),
    )
    .unwrap();
    let log = issuer.dir.join("registry.log");
    let child = Reaped(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(issuer.dir.join("registry.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(issuer.dir.join("registry.err")).unwrap_or_default()
            + &std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(i) = text.find("listening on 127.0.0.1:") {
            let port: String = text[i + 23..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return (child, format!("127.0.0.1:{port}"));
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "token registry did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn privileged_bearer_tokens_anonymous_and_with_credentials() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let issuer = token_issuer(t.path());
    let (_registry, host) = start_token_registry(&issuer);
    {
        let dir = layout(t.path(), "img", &test_layers());
        push(
            &dir,
            "v1",
            &format!("{host}/public/app:v1"),
            Some("phobos:phobos-test"),
        );
        push(
            &dir,
            "v1",
            &format!("{host}/private/app:v1"),
            Some("phobos:phobos-test"),
        );
        let store = Store::open(t.path().join("store")).unwrap();
        let public = Reference::parse(&format!("{host}/public/app:v1")).unwrap();
        let image = pull(&store, &public, &settings(), &Quiet).unwrap();
        assert_eq!(image.layers.len(), 2);
        let private = Reference::parse(&format!("{host}/private/app:v1")).unwrap();
        let err = pull(&store, &private, &settings(), &Quiet).unwrap_err();
        assert!(
            err.to_string().contains("token from http://127.0.0.1"),
            "{err}"
        );
        let with = PullSettings {
            credentials: Credentials::from_json(
                &format!(r#"{{"auths":{{"{host}":{{"auth":"cGhvYm9zOnBob2Jvcy10ZXN0"}}}}}}"#),
                "t",
            )
            .unwrap(),
            ..settings()
        };
        let image = pull(&store, &private, &with, &Quiet).unwrap();
        assert_eq!(image.config.working_dir.as_deref(), Some("/opq"));
    }
}

// ---- Registries that misbehave on purpose ----

type Routes = HashMap<String, (u16, Vec<(&'static str, String)>, Vec<u8>)>;

/// A static HTTP server; records each request's path and whether it
/// carried an Authorization header.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

fn serve(routes: Routes, basic: Option<String>) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (path, headers) = read_head(&mut stream);
            let auth = headers.get("authorization").cloned();
            seen2.lock().unwrap().push((path.clone(), auth.is_some()));
            if let Some(b) = &basic
                && auth.as_deref() != Some(b.as_str())
            {
                respond(
                    &mut stream,
                    401,
                    &[("WWW-Authenticate", "Basic realm=\"fake\"".into())],
                    b"",
                );
                continue;
            }
            match routes.get(&path) {
                Some((status, headers, body)) => respond(&mut stream, *status, headers, body),
                None => respond(&mut stream, 404, &[], b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}"),
            }
        }
    });
    (port, seen)
}

/// Routes of an image `repo:v1`; `blob_override` replaces the layer blob's route.
fn image_routes(layer_tar: &[u8], corrupt: bool) -> (Routes, String) {
    let gz = common::gzip(layer_tar);
    let layer_digest = common::digest(&gz);
    let config = common::config(
        &[common::digest(layer_tar)],
        serde_json::json!({"Cmd": ["sh"]}),
    );
    let config_digest = common::digest(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer_digest, "size": gz.len()}],
    }))
    .unwrap();
    let ct = (
        "Content-Type",
        "application/vnd.docker.distribution.manifest.v2+json".to_string(),
    );
    let mut routes = Routes::new();
    routes.insert(
        "/v2/repo/manifests/v1".into(),
        (
            200,
            vec![ct, ("Docker-Content-Digest", common::digest(&manifest))],
            manifest,
        ),
    );
    routes.insert(
        format!("/v2/repo/blobs/{config_digest}"),
        (200, vec![], config),
    );
    let mut blob = gz;
    if corrupt {
        let n = blob.len();
        blob[n - 12] ^= 0x55;
    }
    routes.insert(
        format!("/v2/repo/blobs/{layer_digest}"),
        (200, vec![], blob),
    );
    (routes, layer_digest)
}

#[test]
fn privileged_digest_mismatch_stores_nothing() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (routes, _) = image_routes(&layer(&[E::File("f", 0o644, b"content")]), true);
    let (port, _) = serve(routes, None);
    let store = Store::open(t.path().join("store")).unwrap();
    let err = pull(
        &store,
        &Reference::parse(&format!("127.0.0.1:{port}/repo:v1")).unwrap(),
        &settings(),
        &Quiet,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::DigestMismatch { .. } | Error::Malformed { .. }),
        "{err}"
    );
    assert!(store.records().unwrap().is_empty());
    assert_eq!(
        count(&store.root().join("layers")) + count(&store.root().join("staging")),
        0
    );

    // A manifest whose body is not what Docker-Content-Digest says.
    let (mut routes, _) = image_routes(&layer(&[E::File("f", 0o644, b"content")]), false);
    let entry = routes.get_mut("/v2/repo/manifests/v1").unwrap();
    entry.1[1].1 = common::digest(b"something else");
    let (port, _) = serve(routes, None);
    let err = pull(
        &store,
        &Reference::parse(&format!("127.0.0.1:{port}/repo:v1")).unwrap(),
        &settings(),
        &Quiet,
    )
    .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store.records().unwrap().is_empty());
}

#[test]
fn privileged_blob_redirects_drop_credentials_for_other_hosts() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (mut routes, layer_digest) =
        image_routes(&layer(&[E::File("f", 0o644, b"content")]), false);
    let blob = routes
        .remove(&format!("/v2/repo/blobs/{layer_digest}"))
        .unwrap();
    let mut cdn_routes = Routes::new();
    cdn_routes.insert("/cdn/layer?sig=1".into(), blob);
    let (cdn, cdn_seen) = serve(cdn_routes, None);
    routes.insert(
        format!("/v2/repo/blobs/{layer_digest}"),
        (
            307,
            vec![(
                "Location",
                format!("http://127.0.0.1:{cdn}/cdn/layer?sig=1"),
            )],
            Vec::new(),
        ),
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("u:p")
    );
    let (port, seen) = serve(routes, Some(basic));
    let with = PullSettings {
        credentials: Credentials::from_json(
            &format!(r#"{{"auths":{{"127.0.0.1:{port}":{{"username":"u","password":"p"}}}}}}"#),
            "t",
        )
        .unwrap(),
        ..settings()
    };
    let store = Store::open(t.path().join("store")).unwrap();
    let image = pull(
        &store,
        &Reference::parse(&format!("127.0.0.1:{port}/repo:v1")).unwrap(),
        &with,
        &Quiet,
    )
    .unwrap();
    assert_eq!(
        std::fs::read(image.layers[0].join("f")).unwrap(),
        b"content"
    );
    assert!(seen.lock().unwrap().iter().any(|(_, auth)| *auth));
    let cdn_seen = cdn_seen.lock().unwrap();
    assert_eq!(cdn_seen.len(), 1);
    assert!(!cdn_seen[0].1, "credentials were sent to the redirect host");
}

#[test]
fn bad_registries_fail_with_one_line() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    // Refused connection.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = pull(
        &store,
        &Reference::parse(&format!("127.0.0.1:{free}/x")).unwrap(),
        &settings(),
        &Quiet,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{free}")) && text.contains("refused"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    // A registry that accepts and never answers: within the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let quick = PullSettings {
        timeout: Duration::from_secs(1),
        ..settings()
    };
    let start = Instant::now();
    let err = pull(
        &store,
        &Reference::parse(&format!("127.0.0.1:{port}/x")).unwrap(),
        &quick,
        &Quiet,
    )
    .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    drop(silent);
    // Unknown tag, malformed and schema 1 manifests.
    let mut routes = Routes::new();
    routes.insert(
        "/v2/repo/manifests/bad".into(),
        (
            200,
            vec![("Content-Type", "application/json".into())],
            b"{not json".to_vec(),
        ),
    );
    routes.insert(
        "/v2/repo/manifests/old".into(),
        (
            200,
            vec![(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            )],
            br#"{"schemaVersion":1}"#.to_vec(),
        ),
    );
    let (port, _) = serve(routes, None);
    let r = |tag: &str| Reference::parse(&format!("127.0.0.1:{port}/repo:{tag}")).unwrap();
    let err = pull(&store, &r("nope"), &settings(), &Quiet).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("image 127.0.0.1:{port}/repo:nope not found in registry 127.0.0.1:{port}")
    );
    let err = pull(&store, &r("bad"), &settings(), &Quiet).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    let err = pull(&store, &r("old"), &settings(), &Quiet).unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { .. }) && err.to_string().contains("schema 1"),
        "{err}"
    );
    assert!(store.records().unwrap().is_empty());
}
