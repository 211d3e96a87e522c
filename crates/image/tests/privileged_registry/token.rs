//! Bearer tokens: a registry with token auth and an issuer here that signs
//! JWTs with a key made by openssl.

use std::net::TcpListener;
use std::time::Instant;

use super::*;

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
            start.elapsed() < PATIENCE,
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
