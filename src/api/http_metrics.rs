//! Request metrics: the latency histogram `floe_http_request_seconds{method, route, status}`, whose
//! `_count` series is the request count. The route is the matched pattern
//! (`/v1/{prefix}/namespaces/{namespace}/tables/{table}`), never the raw path, so names of tenants'
//! tables do not become label values; unmatched paths are counted as `unmatched`, and methods
//! other than the standard ones as `other` (a client picks the method: it must not pick labels).
//!
//! Each worker thread keeps the histogram handles it has used, so a request costs a route match
//! and a map lookup, not a registry lookup with freshly built labels (load-table, which is
//! routed by hand, is labelled without building its pattern). [`super::guard`] records
//! every answered request here (one middleware on the hot path, not two).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use metrics::Histogram;

use super::paths::{LOAD_TABLE_ROUTE, is_load_table};

/// A histogram handle's labels: the route's pattern, the method and the status.
type Labels = (Cow<'static, str>, &'static str, u16);

thread_local! {
    // foldhash, not SipHash: the keys are bounded (patterns, methods, statuses), not a client's.
    static HANDLES: RefCell<HashMap<Labels, Histogram, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

/// The `method` label: a standard method's name, or `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Records one answered request that started at `started` (called by [`super::guard`]).
pub fn record<B>(res: &ServiceResponse<B>, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    let request = res.request();
    let route: Cow<'static, str> = if is_load_table(request.method(), request.path()) {
        Cow::Borrowed(LOAD_TABLE_ROUTE)
    } else {
        request
            .match_pattern()
            .map_or(Cow::Borrowed("unmatched"), Cow::Owned)
    };
    let key = (route, method_label(request.method()), res.status().as_u16());
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        match handles.get(&key) {
            Some(histogram) => histogram.record(elapsed),
            None => {
                let labels = [
                    ("method", key.1.to_owned()),
                    ("route", key.0.to_string()),
                    ("status", key.2.to_string()),
                ];
                let histogram = metrics::histogram!("floe_http_request_seconds", &labels);
                histogram.record(elapsed);
                handles.insert(key, histogram);
            }
        }
    });
}
