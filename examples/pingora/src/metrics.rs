//! The proxy's metrics port: `GET /metrics` answers the cache's and the storage's metrics in
//! Prometheus text, on a Pingora service of its own (its own listener, beside the proxy's).

use crate::storage::DiskStorage;
use async_trait::async_trait;
use http::{header, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

/// The app behind the metrics port.
pub struct MetricsService {
    storage: &'static DiskStorage,
}

impl MetricsService {
    pub fn new(storage: &'static DiskStorage) -> MetricsService {
        MetricsService { storage }
    }
}

#[async_trait]
impl ServeHttp for MetricsService {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (status, content_type, body) = match session.req_header().uri.path() {
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.storage.prometheus_text().into_bytes(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                b"try /metrics\n".to_vec(),
            ),
        };
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .body(body)
            .expect("a response of valid parts")
    }
}
