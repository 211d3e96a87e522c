//! The HTTP face: listeners, connections, routing, authentication and
//! limits. HTTP/1.1 with keep-alive by hyper on tokio; a Unix socket
//! (`<runtime_dir>/agent.sock`, mode 0600: root only, as the containers'
//! owner) and, when asked, TCP, where every request must carry
//! `Authorization: Bearer <token>` (401 otherwise).
//!
//! Limits: request bodies ([`Limits::max_body`], 413 beyond), open
//! connections ([`Limits::max_connections`]: further ones wait in the
//! listen backlog), and the time to send a request's headers
//! ([`Limits::header_timeout`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use phobos_runtime::Door;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use crate::calls::{self, Answer};
use crate::error::{AgentError, ApiError};
use crate::media::{self, RequestBody};
use crate::metrics::{self, Metrics};
use crate::waits::Waits;

pub type Body = BoxBody<Bytes, Infallible>;

/// The agent's hard limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Most connections served at once (over all listeners).
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Most output streams served at once (503 beyond).
    pub max_streams: usize,
    /// A stream with nothing to send sends a heartbeat this often.
    pub heartbeat: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 4 * 1024 * 1024,
            max_connections: 4096,
            header_timeout: Duration::from_secs(30),
            max_streams: 256,
            heartbeat: Duration::from_secs(30),
        }
    }
}

/// Everything a request handler reaches.
pub struct State {
    pub door: Arc<Door>,
    pub waits: Arc<Waits>,
    pub metrics: Metrics,
    pub recovering: AtomicBool,
    pub limits: Limits,
    /// Permits for output streams ([`Limits::max_streams`]).
    pub streams: Arc<Semaphore>,
    /// Whether this process may switch users (root).
    pub root: bool,
    /// Told after each launch: the spare cgroups it took are made again.
    pub refill: Arc<tokio::sync::Notify>,
}

/// Binds `path` as a Unix socket readable and writable by its owner only:
/// bound under a temporary name, restricted, then renamed into place, so
/// it is never reachable with wider permissions. A stale socket (nobody
/// listening) is replaced; a live one or anything that is not a socket is
/// refused (symlinks are not followed).
pub fn bind_unix(path: &Path) -> Result<std::os::unix::net::UnixListener, AgentError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(AgentError::SocketInUse(path.to_owned()));
            }
        }
        Ok(_) => return Err(AgentError::NotASocket(path.to_owned())),
        Err(_) => {}
    }
    let listen = |source| AgentError::Listen {
        what: path.display().to_string(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "agent.sock".into());
    let temp = path.with_file_name(format!(".{file_name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let listener = std::os::unix::net::UnixListener::bind(&temp).map_err(listen)?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(listen(e));
    }
    listener.set_nonblocking(true).map_err(listen)?;
    Ok(listener)
}

/// Reads a bearer token: the file must be the owner's only, the token its
/// first line.
pub fn read_token(path: &Path) -> Result<String, AgentError> {
    let meta = std::fs::metadata(path).map_err(|source| AgentError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(AgentError::TokenFileMode {
            path: path.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| AgentError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    if token.is_empty() {
        return Err(AgentError::EmptyToken(path.to_owned()));
    }
    Ok(token)
}

/// Serves connections from `listener` until the process stops.
pub async fn accept_unix(
    state: Arc<State>,
    listener: tokio::net::UnixListener,
    slots: Arc<Semaphore>,
) {
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(Arc::clone(&state), stream, None, permit));
            }
            Err(e) => accept_failed(e).await,
        }
    }
}

/// Serves TCP connections; each request must carry `token`.
pub async fn accept_tcp(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    token: Arc<str>,
    slots: Arc<Semaphore>,
) {
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                let token = Some(Arc::clone(&token));
                tokio::spawn(connection(Arc::clone(&state), stream, token, permit));
            }
            Err(e) => accept_failed(e).await,
        }
    }
}

/// Out of descriptors and the like: pause rather than spin.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn connection<S>(
    state: Arc<State>,
    stream: S,
    token: Option<Arc<str>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    state.metrics.connection_opened();
    let service_state = Arc::clone(&state);
    let service = hyper::service::service_fn(move |req| {
        let state = Arc::clone(&service_state);
        let token = token.clone();
        async move { Ok::<_, Infallible>(handle(&state, req, token.as_deref()).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    state.metrics.connection_closed();
}

/// One request, timed and counted.
async fn handle(
    state: &Arc<State>,
    req: Request<Incoming>,
    token: Option<&str>,
) -> hyper::Response<Body> {
    let start = Instant::now();
    let (label, response) = match authorize(&req, token) {
        Ok(()) => route(state, req).await,
        Err(e) => {
            // The body of a stranger is not read; the connection ends.
            let mut response = error_response(&e);
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            ("unauthorized".to_owned(), response)
        }
    };
    state
        .metrics
        .observe(&label, response.status().as_u16(), start.elapsed());
    response
}

/// Constant-time comparison of the bearer token (TCP only).
fn authorize(req: &Request<Incoming>, token: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "a valid 'Authorization: Bearer <token>' header is required",
        ))
    }
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> (String, hyper::Response<Body>) {
    let path = req.uri().path().to_owned();
    match (path.as_str(), req.method()) {
        ("/api/v1", &Method::POST) => match api(state, req).await {
            Ok((label, response)) => (label, response),
            Err((label, e)) => (label, error_response(&e)),
        },
        ("/api/v1", _) => {
            let mut response = error_response(&ApiError::method_not_allowed(format!(
                "Expecting 'POST', received '{}'",
                req.method()
            )));
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            ("api".to_owned(), response)
        }
        ("/metrics", &Method::GET) => ("metrics".to_owned(), metrics_response(state).await),
        (p, &Method::GET) if p.starts_with(crate::listing::PATH) => {
            let answer = match crate::listing::answer(state, p).await {
                Ok(body) => response(200, media::JSON, body.into()),
                Err(e) => error_response(&e),
            };
            ("containers".to_owned(), answer)
        }
        ("/health", &Method::GET) => {
            let recovering = state.recovering.load(Ordering::Relaxed);
            let body = format!(
                "{{\"healthy\":{},\"recovering\":{recovering}}}\n",
                !recovering
            );
            let status = if recovering { 503 } else { 200 };
            (
                "health".to_owned(),
                response(status, media::JSON, body.into()),
            )
        }
        ("/metrics" | "/health", _) => {
            let mut response = error_response(&ApiError::method_not_allowed(format!(
                "Expecting 'GET', received '{}'",
                req.method()
            )));
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET"));
            ("other".to_owned(), response)
        }
        _ => (
            "other".to_owned(),
            error_response(&ApiError::not_found(format!("no endpoint {path:?}"))),
        ),
    }
}

type Labeled<T> = Result<T, (String, ApiError)>;

/// `POST /api/v1`.
async fn api(
    state: &Arc<State>,
    req: Request<Incoming>,
) -> Labeled<(String, hyper::Response<Body>)> {
    let fail = |label: &str| {
        let label = label.to_owned();
        move |e: ApiError| (label.clone(), e)
    };
    if state.recovering.load(Ordering::Relaxed) {
        drain(req, state.limits.max_body).await;
        return Err(fail("api")(ApiError::unavailable(
            "Agent has not finished recovery",
        )));
    }
    let format = match media::request_format(req.headers()) {
        Ok(format) => format,
        Err(e) => {
            drain(req, state.limits.max_body).await;
            return Err(fail("api")(e));
        }
    };
    let format = match format {
        RequestBody::Whole(format) => format,
        // Only ATTACH_CONTAINER_INPUT streams its request.
        RequestBody::Stream(format) => {
            let label = "ATTACH_CONTAINER_INPUT";
            crate::input::serve(state, req, format)
                .await
                .map_err(fail(label))?;
            return Ok((label.to_owned(), response(200, "text/plain", Bytes::new())));
        }
    };
    // Which one applies depends on the call, known once the body is read.
    let accept = media::response_format(req.headers(), format);
    let stream_accept = media::stream_format(req.headers(), format);
    let body = read_body(req, state.limits.max_body)
        .await
        .map_err(fail("api"))?;
    let call = format.decode_call(&body).map_err(fail("api"))?;
    let label = call.r#type().as_str_name().to_owned();
    if calls::streams(&call) {
        stream_accept
            .as_ref()
            .map_err(|e| fail(&label)(e.clone()))?;
    } else {
        accept.as_ref().map_err(|e| fail(&label)(e.clone()))?;
    }
    let answer = calls::serve(state, call).await.map_err(fail(&label))?;
    let response = match answer {
        Answer::Empty(status) => response(status, "text/plain", Bytes::new()),
        Answer::Body(body) => {
            let accept = accept.map_err(fail(&label))?;
            let bytes = accept.encode_response(&body).map_err(fail(&label))?;
            response(200, accept.mime(), bytes.into())
        }
        Answer::Output(follow) => {
            let format = stream_accept.map_err(fail(&label))?;
            let permit = Arc::clone(&state.streams)
                .try_acquire_owned()
                .map_err(|_| {
                    fail(&label)(ApiError::unavailable(format!(
                        "too many output streams (at most {})",
                        state.limits.max_streams
                    )))
                })?;
            let (tx, body) = crate::stream::channel(format, state.limits.heartbeat);
            let pump_state = Arc::clone(state);
            tokio::spawn(async move {
                crate::attach::pump(pump_state, follow, tx).await;
                drop(permit);
            });
            let mut response = hyper::Response::new(body.boxed());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(media::RECORDIO));
            response.headers_mut().insert(
                media::MESSAGE_CONTENT_TYPE,
                HeaderValue::from_static(format.mime()),
            );
            response
        }
    };
    Ok((label, response))
}

/// Reads and drops a refused request's body (at most `max` bytes), so
/// the connection stays usable for the next request: hyper closes a
/// keep-alive connection whose last body was left unread.
async fn drain(req: Request<Incoming>, max: usize) {
    let _ = read_body(req, max).await;
}

/// The whole body, refused with 413 beyond `max` (by its announced length
/// before reading, or as it arrives).
async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::too_large(format!("Request body is larger than {max} bytes"));
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "Failed to read the request body: {e}"
        ))),
    }
}

async fn metrics_response(state: &Arc<State>) -> hyper::Response<Body> {
    let door = Arc::clone(&state.door);
    let scraped = tokio::task::spawn_blocking(move || {
        let list = door.list()?;
        let running: Vec<_> = list
            .iter()
            .filter(|c| c.state() == phobos_core::ContainerState::Running)
            .map(|c| c.id().clone())
            .collect();
        let stats = door
            .usage_of(&running)
            .into_iter()
            .filter_map(|(id, r)| Some((id.to_string(), r.ok()??)))
            .collect();
        Ok::<_, phobos_runtime::RuntimeError>((list, stats))
    })
    .await;
    let mut out = String::new();
    state.metrics.render_agent(
        &mut out,
        state.waits.open(),
        state.recovering.load(Ordering::Relaxed),
        state.door.zygote_pid(),
    );
    match scraped {
        Ok(Ok((list, stats))) => metrics::render_containers(&mut out, &list, &stats),
        Ok(Err(e)) => tracing::warn!(error = %e, "no container metrics"),
        Err(e) => tracing::warn!(error = %e, "no container metrics"),
    }
    response(200, "text/plain; version=0.0.4", out.into())
}

fn response(status: u16, content_type: &'static str, body: Bytes) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Full::new(body).boxed());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An error as Mesos answers it: the status and one line of text.
fn error_response(e: &ApiError) -> hyper::Response<Body> {
    let mut line = e.message.replace('\n', " ");
    line.push('\n');
    response(e.status, "text/plain; charset=utf-8", line.into())
}

/// Where a TCP listener binds: `tcp:HOST:PORT`.
pub fn tcp_addr(spec: &str) -> Result<SocketAddr, AgentError> {
    spec.strip_prefix("tcp:")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| AgentError::BadListen(spec.to_owned()))
}

/// The default socket path.
pub fn default_socket(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("agent.sock")
}
