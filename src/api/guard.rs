//! What every request is held to, in one middleware (the outermost): the server's capacity, its
//! deadline, its client's presence and its request id.
//!
//! - **Slow clients.** Headers must arrive within `request_head_timeout_ms` (actix closes the
//!   connection otherwise) and a body within `request_body_timeout_ms` of them (408, connection
//!   closed): the body is read here, before the request counts against capacity, so clients that
//!   send slowly hold no slot a served request needs. At most `max_connections_per_address`
//!   connections from one address are served at once; requests on more answer 503 and close.
//! - **Capacity.** At most `max_in_flight` requests run at once; one more answers 503 with
//!   `Retry-After` at once, costing next to nothing, instead of queueing without bound
//!   (`/health/live` is always answered). Once the server is stopping, every new request answers
//!   503 and closes its connection.
//! - **Deadline.** A read (GET, HEAD) answers within `request_deadline_ms`; a write within the
//!   commit deadline plus [`WRITE_GRACE`], because a commit answers for itself before its own
//!   deadline and must not be cut short in its pointer swap. Past the deadline the request's work
//!   is dropped at its next await (a single-flight waiter with it) and the answer is 503 with
//!   `Retry-After`.
//! - **A client that went away.** actix does not notice a client hanging up while a handler waits
//!   (it reads the connection only between requests), so each connection is watched here through
//!   a duplicate of its socket ([`watch_connection`]): when the client closes its side, the
//!   request's work is dropped at its next await, as at a deadline. The answer goes nowhere; the
//!   log says `client went away`.
//! - **Request id.** The client's `X-Request-Id` (up to 128 visible characters), or one made here
//!   when something asks for it: an error body (`request-id` in the error model), the request log.
//!   Every answer that has one carries it back in `X-Request-Id`. A success on the hot path, with
//!   the request log off, never makes one.

use std::any::Any;
use std::cell::OnceCell;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::Extensions;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::error::ApiError;
use super::request_id::{REQUEST, RequestContext, client_request_id, request_id, with_request_id};
use crate::catalog::ErrorType;

/// How much longer than the commit deadline a write may run before it is cut: time for a commit
/// that stopped at its deadline to clean up and answer for itself.
pub const WRITE_GRACE: Duration = Duration::from_secs(5);

/// The deadlines, the capacity and whether the server is stopping, as `app_data`.
#[derive(Debug)]
pub struct RequestLimits {
    pub read: Duration,
    pub write: Duration,
    /// Longest a body may take to arrive once the headers are in.
    body_timeout: Duration,
    max_body_bytes: usize,
    max_in_flight: usize,
    in_flight: AtomicUsize,
    stopping: std::sync::atomic::AtomicBool,
}

/// One request counted in flight, until it is dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RequestLimits {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            read: Duration::from_millis(settings.request_deadline_ms),
            write: Duration::from_millis(settings.commit_deadline_ms) + WRITE_GRACE,
            body_timeout: Duration::from_millis(settings.request_body_timeout_ms),
            max_body_bytes: settings.max_body_bytes,
            max_in_flight: settings.max_in_flight,
            in_flight: AtomicUsize::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The server is stopping: requests that come now answer 503 and close their connection.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// How many requests are running.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request in, or `None` when the server is at capacity.
    fn enter(&self) -> Option<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let entered = InFlight(&self.in_flight);
        (before < self.max_in_flight).then_some(entered)
    }

    fn of(&self, method: &Method) -> (Duration, bool) {
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS => (self.read, false),
            _ => (self.write, true),
        }
    }
}

/// A watch on one client connection: a duplicate of its socket, registered for readiness only
/// (it is never read), which reports when the client has closed its side.
pub struct ClientConnection(AsyncFd<OwnedFd>);

impl ClientConnection {
    /// Resolves when the client has closed the connection (never, if it cannot be watched).
    async fn closed(&self) {
        loop {
            match self.0.readable().await {
                Ok(mut ready) if !ready.ready().is_read_closed() => ready.clear_ready(),
                Ok(_) => return,
                Err(_) => std::future::pending::<()>().await,
            }
        }
    }
}

/// Connections open now, per client address, across every worker of one server.
type OpenConnections =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>>;

/// One connection counted against its address until it closes (its extensions are dropped).
struct AddressConnection {
    open: OpenConnections,
    address: std::net::IpAddr,
    /// More connections from this address than it may have: its requests are refused.
    over_limit: bool,
}

impl AddressConnection {
    fn open(open: &OpenConnections, address: std::net::IpAddr, max_per_address: u32) -> Self {
        let mut counts = open.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(address).or_default();
        *count += 1;
        Self {
            open: open.clone(),
            address,
            over_limit: *count > max_per_address,
        }
    }
}

impl Drop for AddressConnection {
    fn drop(&mut self) {
        let mut counts = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// `HttpServer::on_connect`: counts each TCP connection against its client's address (at most
/// `max_per_address` served at once by this server) and watches it for its client going away.
pub fn on_connect(max_per_address: u32) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync {
    let open = OpenConnections::default();
    move |connection, data| {
        let Some(tcp) = connection.downcast_ref::<tokio::net::TcpStream>() else {
            return;
        };
        if let Ok(peer) = tcp.peer_addr() {
            data.insert(Rc::new(AddressConnection::open(
                &open,
                peer.ip(),
                max_per_address,
            )));
        }
        watch_connection(tcp, data);
    }
}

/// Watches a TCP connection for its client going away.
fn watch_connection(tcp: &tokio::net::TcpStream, data: &mut Extensions) {
    let watch = tcp.as_fd().try_clone_to_owned().and_then(|fd| {
        // SAFETY: the `OwnedFd` is the duplicate's only owner: it stays open, and names the
        // same socket, until the `AsyncFd` holding it is dropped.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    });
    match watch {
        Ok(watch) => {
            data.insert(Rc::new(ClientConnection(watch)));
        }
        Err(e) => {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "a connection cannot be watched for its client going away"
            )
        }
    }
}

/// An answer made here rather than by a handler (capacity, deadline, a client gone), carrying
/// the request's id (made now if it has none); actix renders it. Returns the id too, for the log.
fn refusal(ctx: RequestContext, error: ApiError) -> (actix_web::Error, String) {
    let (mut response, id) = REQUEST.sync_scope(ctx, || {
        (error.error_response(), request_id().unwrap_or_default())
    });
    with_request_id(Some(&id), response.headers_mut());
    (
        actix_web::error::InternalError::from_response(error, response).into(),
        id,
    )
}

/// An answer made here that also closes the connection (the client may still be sending).
fn closing(ctx: RequestContext, error: ApiError, reason: &'static str) -> actix_web::Error {
    let (refused, _) = refusal(ctx, error);
    let mut response = refused.error_response();
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    actix_web::error::InternalError::from_response(reason, response).into()
}

/// Whether the request says it carries a body.
fn has_body(req: &ServiceRequest) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// Reads the whole body (at most `limits.max_body_bytes`) within `limits.body_timeout` and puts
/// it back for the handler.
async fn read_body(req: &mut ServiceRequest, limits: &RequestLimits) -> Result<(), ApiError> {
    use actix_web::HttpMessage;
    use futures::StreamExt;
    let max = limits.max_body_bytes;
    let too_large = || {
        ApiError::new(
            ErrorType::PayloadTooLarge,
            format!("request body is larger than the limit of {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut payload = req.take_payload();
    let read = async {
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    let body = tokio::time::timeout(limits.body_timeout, read)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorType::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms (setting \
                     request_body_timeout_ms)",
                    limits.body_timeout.as_millis()
                ),
            )
        })??;
    req.set_payload(actix_web::dev::Payload::from(body));
    Ok(())
}

/// The middleware: `App::new().wrap(from_fn(guard))`, outermost. It also records the request's
/// metrics (`super::http_metrics`): one middleware, not two, on the hot path.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let limits = req
        .app_data::<web::Data<RequestLimits>>()
        .cloned()
        .expect("RequestLimits are registered");
    let ctx = RequestContext {
        id: OnceCell::new(),
    };
    if let Some(id) = client_request_id(&req) {
        let _ = ctx.id.set(id);
    }
    if limits.stopping.load(Ordering::Relaxed) {
        let error = ApiError::new(
            ErrorType::ServiceUnavailable,
            "the server is stopping; retry (on another replica)",
        );
        return Err(closing(ctx, error, "stopping"));
    }
    if req
        .conn_data::<Rc<AddressConnection>>()
        .is_some_and(|c| c.over_limit)
    {
        metrics::counter!("floe_connections_refused_total").increment(1);
        let error = ApiError::new(
            ErrorType::ServiceUnavailable,
            "too many connections from this address (setting max_connections_per_address)",
        );
        return Err(closing(ctx, error, "too many connections"));
    }
    // Read before the request counts: a slow sender holds no slot a served request needs.
    if has_body(&req)
        && let Err(error) = read_body(&mut req, &limits).await
    {
        if error.kind == ErrorType::RequestTimeout {
            metrics::counter!("floe_request_bodies_timed_out_total").increment(1);
        }
        return Err(closing(ctx, error, "request body refused"));
    }
    let _in_flight = match limits.enter() {
        Some(counted) => Some(counted),
        None if req.path() == "/health/live" => None,
        None => {
            metrics::counter!("floe_requests_shed_total").increment(1);
            let error = ApiError::new(
                ErrorType::ServiceUnavailable,
                "the server is at capacity; retry shortly",
            );
            return Err(refusal(ctx, error).0);
        }
    };
    let (deadline, write) = limits.of(req.method());
    // The request cannot be kept (routing needs it unshared): an answer made here leaves as an
    // error actix renders.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let connection = req.conn_data::<Rc<ClientConnection>>().cloned();
    let handler = next.call(req);
    // The handler is polled first: one that answers at once (a cached load) never arms the watch.
    let run = REQUEST.scope(ctx, async move {
        match connection {
            Some(connection) => tokio::select! {
                biased;
                response = handler => Some(response),
                () = connection.closed() => None,
            },
            None => Some(handler.await),
        }
    });
    let mut run = std::pin::pin!(run);
    // Most requests (a cached load) are done on their first poll: no timer is made for them.
    let first = std::future::poll_fn(|cx| Poll::Ready(run.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout(deadline, run.as_mut()).await,
    };
    let ctx = run
        .as_mut()
        .take_value()
        .expect("the request context is taken once");
    let mut response = match outcome {
        Ok(Some(response)) => response?,
        Ok(None) => {
            metrics::counter!("floe_requests_abandoned_total").increment(1);
            let error = ApiError::new(ErrorType::ServiceUnavailable, "the client went away");
            let (refused, id) = refusal(ctx, error);
            tracing::info!(request_id = id, %method, path = uri.path(), "client went away; its request stopped");
            return Err(refused);
        }
        Err(_) => {
            metrics::counter!("floe_request_deadlines_passed_total").increment(1);
            let message = if write {
                format!(
                    "the request did not finish within its deadline of {} ms; whether it took \
                     effect is unknown: read the object before retrying",
                    deadline.as_millis()
                )
            } else {
                format!(
                    "the request did not finish within its deadline of {} ms; retry it",
                    deadline.as_millis()
                )
            };
            let error = ApiError::new(ErrorType::ServiceUnavailable, message);
            let (refused, id) = refusal(ctx, error);
            tracing::warn!(
                request_id = id,
                %method,
                path = uri.path(),
                deadline_ms = deadline.as_millis() as u64,
                "request deadline passed"
            );
            return Err(refused);
        }
    };
    super::http_metrics::record(&response, started);
    with_request_id(ctx.id.get().map(String::as_str), response.headers_mut());
    Ok(response)
}
