//! `agentvisor-dashboard serve`: the read-only HTTP exporter. `/metrics` for Prometheus (see
//! [`exposition`]), `/livez` and `/readyz` for load balancers and probes, `/status.json` (the
//! document of `status --json`). A reader like any dashboard: it opens the database read-only,
//! runs at the dashboard's low CPU priority and never talks to the launcher. docs/exporter.md
//! is its manual.

mod exposition;
mod health;
mod read;

use crate::assess::Verdict;
use crate::cli::ServeArgs;
use crate::commands::status::{to_json, unreadable_json};
use crate::format::Zone;
use agentvisor_shared::paths::Resolved;
use agentvisor_shared::reader::Detail;
use agentvisor_shared::time::now_ms;
use axum::Router;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use exposition::{Exposition, Format};
use read::{Read, Source};
use std::sync::Arc;

/// Usage errors (a bad or non-loopback `--listen`) exit as clap's own do.
const USAGE: u8 = agentvisor_shared::exit_code::EXIT_USAGE;

struct App {
    resolved: Resolved,
    /// Where "today" of `/status.json`'s spend begins.
    zone: Zone,
    source: Source,
    max_custom: usize,
}

pub fn run(resolved: &Resolved, args: &ServeArgs, zone: Zone) -> u8 {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        eprintln!(
            "agentvisor-dashboard: --listen {} is not a loopback address: the exporter has no TLS and no \
             authentication, so it listens only on loopback unless --allow-remote is given (better: keep it \
             on 127.0.0.1 behind a reverse proxy with TLS and auth, see docs/exporter.md)",
            args.listen
        );
        return USAGE;
    }
    let listener = match std::net::TcpListener::bind(args.listen).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("agentvisor-dashboard: cannot listen on {}: {e}", args.listen);
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(args.readers as usize + 2)
        .thread_name("serve")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentvisor-dashboard: cannot start the HTTP runtime: {e}");
            return 1;
        }
    };
    let app = Arc::new(App {
        resolved: resolved.clone(),
        zone,
        source: Source::new(&resolved.path, args.readers),
        max_custom: args.max_custom_series,
    });
    match runtime.block_on(serve(listener, app)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("agentvisor-dashboard: {e}");
            1
        }
    }
}

async fn serve(listener: std::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    // No Nagle delay on the last segment of a response, as Go's exporters do by default.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    // On stderr, so a supervisor's log (and a test that asked for port 0) learns the address.
    eprintln!(
        "agentvisor-dashboard: serving http://{addr}/metrics, /livez, /readyz, /status.json for {}",
        app.resolved.path.display()
    );
    let router = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/status.json", get(status_json))
        .fallback(not_found)
        .with_state(app);
    axum::serve(listener, router).with_graceful_shutdown(stop_signal()).await
}

/// SIGTERM (systemd's stop) or SIGINT (Ctrl-C) end the server after the requests in flight.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the default actions still end the process.
        _ => std::future::pending().await,
    }
}

/// Reads on a blocking thread (SQLite blocks), then hands the result and its time to `f`.
async fn with_read<T: Send + 'static>(
    app: &Arc<App>,
    detail: Detail,
    f: impl FnOnce(&App, Result<Read, String>, i64) -> T + Send + 'static,
) -> Result<T, Response> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let read = app.source.read(detail);
        if let Err(e) = &read {
            tracing::warn!(error = %e, "cannot read the database");
        }
        f(&app, read, now_ms())
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "a request's read ended unexpectedly");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
    })
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let body = with_read(&app, Detail::Figures, move |app, read, now_ms| {
        Exposition { read, now_ms, max_custom: app.max_custom }.encode(format)
    })
    .await;
    match body {
        Ok(Ok(text)) => ([(CONTENT_TYPE, format.content_type())], text).into_response(),
        Ok(Err(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n").into_response(),
        Err(response) => response,
    }
}

async fn probe(
    app: Arc<App>,
    check: fn(&agentvisor_shared::model::Snapshot, i64) -> health::Probe,
) -> Response {
    let verdict = with_read(&app, Detail::Figures, move |_, read, now_ms| match read {
        Ok(read) => check(&read.snapshot, now_ms),
        Err(e) => Err(format!("database unreadable: {e}")),
    })
    .await;
    match verdict {
        Ok(Ok(reason)) => (StatusCode::OK, format!("ok: {reason}\n")).into_response(),
        Ok(Err(reason)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
        Err(response) => response,
    }
}

async fn livez(State(app): State<Arc<App>>) -> Response {
    probe(app, health::livez).await
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    probe(app, health::readyz).await
}

async fn status_json(State(app): State<Arc<App>>) -> Response {
    let doc = with_read(&app, Detail::Full, |app, read, now_ms| match read {
        Ok(read) => {
            // The same document as `status --json`, spend included; a spend that cannot be read
            // leaves it null rather than failing the whole document.
            let spend = app.source.spend(app.zone.day_start_ms(now_ms), now_ms);
            if let Err(e) = &spend {
                tracing::warn!(error = %e, "cannot read the spend");
            }
            (StatusCode::OK, to_json(&read.snapshot, &app.resolved, now_ms, spend.ok().as_ref()))
        }
        Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, unreadable_json(&app.resolved, Verdict::NoDatabase.code()))
        }
    })
    .await;
    match doc {
        Ok((code, doc)) => (code, [(CONTENT_TYPE, "application/json")], format!("{doc}\n")).into_response(),
        Err(response) => response,
    }
}

const ENDPOINTS: &str = "agentvisor-dashboard serve: read-only endpoints\n\
    /metrics      OpenMetrics / Prometheus text\n\
    /livez        200 while the launcher runs and is fresh, else 503\n\
    /readyz       200 while every enabled agent is healthy, else 503\n\
    /status.json  the document of `agentvisor-dashboard status --json`\n";

async fn index() -> &'static str {
    ENDPOINTS
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, ENDPOINTS)
}
