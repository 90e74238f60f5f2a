//! An http probe: GET the URL through hyper-util's pooled client (one for all agents, so a
//! thousand probes of one server reuse their connections); a 2xx or 3xx status is success.
//! At most [`MAX_BODY`] bytes of the body are read, and only as much as the check needs.

use crate::config::probe::MAX_BODY;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::OnceLock;
use std::time::Duration;

type Http = Client<HttpConnector, Empty<Bytes>>;

fn client() -> &'static Http {
    static CLIENT: OnceLock<Http> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector)
    })
}

pub async fn check(url: &str, expect: Option<&str>) -> Result<String, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let request = hyper::Request::get(uri)
        .header(hyper::header::USER_AGENT, concat!("agentvisor-probe/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new())
        .map_err(|e| super::chain::chain(&e))?;
    let response = client().request(request).await.map_err(|e| super::chain::chain(&e))?;
    let status = response.status();
    let mut body = response.into_body();
    // Reading the (short) body lets the connection be used again; a long one is left unread
    // and its connection closed.
    let mut seen: Vec<u8> = Vec::new();
    let mut complete = false;
    while seen.len() < MAX_BODY {
        match body.frame().await {
            None => {
                complete = true;
                break;
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_BODY - seen.len();
                    seen.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => {
                return Err(format!(
                    "HTTP {}: reading the body: {}",
                    status.as_u16(),
                    super::chain::chain(&e)
                ));
            }
        }
    }
    let good = status.is_success() || status.is_redirection();
    if !good {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    if let Some(expect) = expect {
        let found = seen.windows(expect.len()).any(|w| w == expect.as_bytes());
        if !found {
            let within = if complete { "the body" } else { "the first 64 KiB of the body" };
            return Err(format!("HTTP {}, but {within} does not contain {expect:?}", status.as_u16()));
        }
    }
    Ok(format!("HTTP {}", status.as_u16()))
}
