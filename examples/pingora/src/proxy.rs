//! [`CachingProxy`]: a Pingora proxy in front of one origin, caching in the storage given.

use async_trait::async_trait;
use pingora_cache::cache_control::CacheControl;
use pingora_cache::eviction::EvictionManager;
use pingora_cache::filters::resp_cacheable;
use pingora_cache::key::CacheKey;
use pingora_cache::lock::{CacheKeyLockImpl, CacheLock};
use pingora_cache::storage::{HitHandler, Storage};
use pingora_cache::{CacheMeta, CacheMetaDefaults, CachePhase, ForcedFreshness, RespCacheable};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::{ProxyHttp, Session};
use std::net::SocketAddr;
use std::time::Duration;

/// The header each response carries to say how the cache answered it (`hit`, `miss`,
/// `expired`, `revalidated`, ...: Pingora's cache phase).
pub const CACHE_STATUS: &str = "x-cache-status";

/// Responses without an explicit lifetime (max-age, s-maxage or Expires) are not stored.
const DEFAULTS: CacheMetaDefaults = CacheMetaDefaults::new(|_| None, 0, 0);

/// A proxy to `origin` that caches what HTTP allows it to in `storage`.
pub struct CachingProxy {
    origin: SocketAddr,
    storage: &'static (dyn Storage + Sync),
    eviction: Option<&'static (dyn EvictionManager + Sync)>,
    lock: &'static CacheKeyLockImpl,
    max_body_size: usize,
}

impl CachingProxy {
    /// A proxy to `origin` caching bodies up to `max_body_size` in `storage`; `eviction`
    /// for a storage that does not evict by itself (dcache does).
    pub fn new(
        origin: SocketAddr,
        storage: &'static (dyn Storage + Sync),
        eviction: Option<&'static (dyn EvictionManager + Sync)>,
        max_body_size: usize,
    ) -> CachingProxy {
        // One fill per key at a time; others wait for it, up to the lock's timeout.
        let lock: &'static CacheKeyLockImpl =
            Box::leak(CacheLock::new_boxed(Duration::from_secs(10)));
        CachingProxy {
            origin,
            storage,
            eviction,
            lock,
            max_body_size,
        }
    }
}

#[async_trait]
impl ProxyHttp for CachingProxy {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.origin, false, String::new())))
    }

    fn request_cache_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<()> {
        let method = &session.req_header().method;
        if !matches!(method.as_str(), "GET" | "HEAD" | "PURGE") {
            return Ok(());
        }
        session
            .cache
            .enable(self.storage, self.eviction, None, Some(self.lock), None);
        session.cache.set_max_file_size_bytes(self.max_body_size);
        Ok(())
    }

    fn cache_key_callback(&self, session: &Session, _ctx: &mut ()) -> Result<CacheKey> {
        let req = session.req_header();
        let host = req.headers.get("host").map_or(&b""[..], |h| h.as_bytes());
        // A newline can be in neither part, so it frames them unambiguously.
        let mut primary = Vec::with_capacity(host.len() + 1 + req.uri.to_string().len());
        primary.extend_from_slice(host);
        primary.push(b'\n');
        primary.extend_from_slice(req.uri.to_string().as_bytes());
        Ok(CacheKey::new(primary, ""))
    }

    async fn cache_hit_filter(
        &self,
        session: &mut Session,
        _meta: &CacheMeta,
        _hit_handler: &mut HitHandler,
        _is_fresh: bool,
        _ctx: &mut (),
    ) -> Result<Option<ForcedFreshness>> {
        // A request's `Cache-Control: no-cache` (or `Pragma: no-cache` without Cache-Control)
        // asks that the stored response be revalidated before it is used (RFC 9111 §5.2.1.4).
        let headers = &session.req_header().headers;
        let no_cache = match headers.get("cache-control") {
            Some(cc) => cc.to_str().is_ok_and(|cc| {
                cc.split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
            }),
            None => headers
                .get("pragma")
                .and_then(|p| p.to_str().ok())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("no-cache")),
        };
        Ok(no_cache.then_some(ForcedFreshness::ForceExpired))
    }

    fn response_cache_filter(
        &self,
        session: &Session,
        resp: &ResponseHeader,
        _ctx: &mut (),
    ) -> Result<RespCacheable> {
        let cc = CacheControl::from_resp_headers(resp);
        let authorized = session.req_header().headers.contains_key("authorization");
        Ok(resp_cacheable(
            cc.as_ref(),
            resp.clone(),
            authorized,
            &DEFAULTS,
        ))
    }

    fn is_purge(&self, session: &Session, _ctx: &()) -> bool {
        session.req_header().method.as_str() == "PURGE"
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        _ctx: &mut (),
    ) -> Result<()> {
        let status = match session.cache.phase() {
            CachePhase::Disabled(_) => "disabled",
            phase => phase.as_str(),
        };
        resp.insert_header(CACHE_STATUS, status)?;
        Ok(())
    }
}
