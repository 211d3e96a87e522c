//! Registries that misbehave on purpose: small HTTP servers on 127.0.0.1
//! with wrong digests, redirects to other hosts, and bad answers.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use super::*;

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
    let (_refusing, free) = common::refusing_port::refusing_port();
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
