//! Wiring and supervision: builds the cache, feed, scheduler, engine and API from a
//! configuration, and owns the lifecycle: one root cancellation token and one task
//! tracker for everything spawned, reload of the mailbox list, and shutdown within a
//! bounded grace period (subscriptions are unsubscribed on the way out).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::http::{self, ApiState};
use crate::api::metrics;
use crate::api::tls::ApiTls;
use crate::api::tokens::{TokenFileError, Tokens};
use crate::config::{Config, ConfigError};
use crate::engine::{Engine, Shared};
use crate::opt_out_store::OptOutStore;
use crate::presence::cache::Cache;
use crate::presence::clock::Clock;
use crate::presence::feed::{Feed, REPLAY, lag_for};
use crate::presence::schedule::Scheduler;
use crate::presence::updates::Updates;
use crate::roster::Roster;
use crate::source::{ReloadSummary, Source};

/// Time shutdown waits for unsubscribes and connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The API address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A gateway's TLS client material is unusable.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineStartError),
    /// A Graph gateway's client cannot be built.
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphStartError),
    /// The API's certificate, key or client CA is unusable.
    #[error("[api] TLS: {0}")]
    ApiTls(#[from] crate::api::tls::ApiTlsError),
    /// The state directory's store cannot be used.
    #[error("{0}")]
    State(#[from] crate::opt_out_store::StoreError),
    /// A SIP presence server's TLS settings are unusable.
    #[error(transparent)]
    Publisher(#[from] crate::publish::PublisherStartError),
}

/// A running daemon.
pub struct App {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// The presence cache (for in-process tests).
    pub cache: Arc<Cache>,
    /// The source of presence: the EWS engine.
    pub source: Arc<dyn Source>,
    config: Arc<Config>,
    roster: Arc<Roster>,
    api: Arc<ApiState>,
    api_tls: Option<Arc<ApiTls>>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl App {
    /// Starts everything.
    pub async fn start(config: Config) -> Result<App, StartError> {
        // Shared with the API (the troubleshooter's checks), not copied.
        let config = Arc::new(config);
        let handle = metrics::install();
        let feed = Arc::new(Feed::new(REPLAY, lag_for(config.mailboxes.len())));
        let cache = Arc::new(Cache::new(
            config.presence.mapping,
            feed.clone(),
            Clock::System,
            config.presence.max_stale,
        ));
        let scheduler = Arc::new(Scheduler::default());
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let listener = TcpListener::bind(config.api.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.api.listen,
                source,
            })?;
        let api_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.api.listen,
            source,
        })?;
        tracker.spawn(scheduler.clone().run(cache.clone(), stop.clone()));
        if let Some(handle) = &handle {
            tracker.spawn(metrics::upkeep(handle.clone(), stop.clone()));
        }
        let shared = Arc::new(Shared {
            updates: Updates::new(cache.clone(), scheduler),
            presence: config.presence.clone(),
        });
        let roster = Arc::new(Roster::new(&config, OptOutStore::open(&config.state_dir)?)?);
        let served = roster.served();
        let graph_gateways: Vec<bool> = config.gateways.iter().map(|g| g.graph.is_some()).collect();
        let (graph_served, ews_served): (Vec<_>, Vec<_>) = served
            .into_iter()
            .partition(|(_, g)| graph_gateways.get(*g).copied().unwrap_or(false));
        let engine = Arc::new(Engine::start(
            &config,
            &ews_served,
            shared.clone(),
            stop.clone(),
            tracker.clone(),
        )?);
        let graph = crate::graph::GraphSource::start(
            &config,
            &graph_served,
            shared,
            stop.clone(),
            tracker.clone(),
        )?;
        let receiver = graph.receiver();
        let engine: Arc<dyn Source> = Arc::new(crate::source::Split {
            ews: engine,
            graph: Arc::new(graph),
            graph_gateways,
        });
        roster.mark_opted_out(&cache);
        let publishers = crate::publish::Publishers::start(
            &config.sips,
            &config.certs_dir,
            &cache,
            &stop,
            &tracker,
        )?;
        let state = Arc::new(ApiState {
            cache: cache.clone(),
            feed,
            status: engine.status(),
            source: engine.clone(),
            graph: Some(receiver),
            roster: roster.clone(),
            publishers,
            tokens: std::sync::RwLock::new(config.api.tokens.clone()),
            auth_failures: Default::default(),
            metrics: handle,
            stop: stop.clone(),
            connections: crate::api::connections::Connections::new(config.api.max_connections),
            config: config.clone(),
        });
        let api_connections = state.connections.limit();
        let api_tls = match &config.api.tls {
            None => None,
            Some(files) => {
                let tls = Arc::new(ApiTls::load(files.clone())?);
                tracker.spawn(tls.clone().watch(stop.clone()));
                Some(tls)
            }
        };
        tracker.spawn(http::serve(
            state.clone(),
            listener,
            api_tls.clone(),
            tracker.clone(),
        ));
        for gateway in &config.gateways {
            if let Some(warning) = gateway.plain_http_warning() {
                tracing::warn!(gateway = %gateway.name, "{warning}");
            } else if gateway
                .url
                .as_ref()
                .is_some_and(|u| u.scheme_str() == Some("http"))
            {
                tracing::warn!(gateway = %gateway.name, "gateway URL is plain http://: calendars cross the network unencrypted");
            }
        }
        tracing::info!(
            api = %api_addr,
            https = api_tls.is_some(),
            api_connections,
            mailboxes = config.mailboxes.len(),
            gateways = config.gateways.len(),
            sip_servers = config.sips.len(),
            "started"
        );
        Ok(App {
            api_addr,
            cache,
            source: engine,
            config,
            roster,
            api: state,
            api_tls,
            stop,
            tracker,
        })
    }

    /// Re-reads the API's token file, when there is one; on failure the tokens in use
    /// stay, and the error names the file and line.
    pub fn reload_tokens(&self) -> Result<(), TokenFileError> {
        let Some(path) = &self.config.api.token_file else {
            return Ok(());
        };
        let tokens = Tokens::load(path)?;
        let count = tokens.len();
        *common::sync::write(&self.api.tokens) = Some(tokens);
        tracing::info!(tokens = count, "API tokens reloaded");
        Ok(())
    }

    /// Re-reads the API's TLS files (when it serves HTTPS); on failure the ones in use
    /// stay, and the error says which file.
    pub fn reload_tls(&self) -> Result<(), crate::api::tls::ApiTlsError> {
        match &self.api_tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Re-reads the mailbox list and applies it.
    pub fn reload(&self) -> Result<ReloadSummary, ConfigError> {
        let list = self.config.load_mailboxes()?;
        let summary = self.roster.apply(list, self.source.as_ref(), &self.cache);
        if summary.total == 0 && summary.removed > 0 {
            tracing::warn!(
                removed = summary.removed,
                "mailbox list reloaded: it is empty, every mailbox was dropped"
            );
        } else {
            tracing::info!(
                added = summary.added,
                removed = summary.removed,
                total = summary.total,
                "mailbox list reloaded"
            );
        }
        Ok(summary)
    }

    /// Stops serving, unsubscribes what it can within `grace`, and returns.
    pub async fn shutdown(self, grace: Duration) {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "shutdown grace period ran out"
            );
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the mailbox list, the API's
/// tokens and its TLS files.
pub async fn run(config: Config) -> Result<(), StartError> {
    use tokio::signal::unix::{SignalKind, signal};
    let app = App::start(config).await?;
    app.tracker.spawn(crate::service::ready_when_synced(
        app.cache.clone(),
        app.stop.clone(),
    ));
    app.tracker
        .spawn(crate::service::watchdog(app.stop.clone()));
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => break,
            _ = async { match hangup.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {
                match app.reload() {
                    Ok(summary) => crate::service::reloaded(summary.total),
                    Err(e) => tracing::error!(error = %e, "reload failed; keeping the current mailbox list"),
                }
                if let Err(e) = app.reload_tokens() {
                    tracing::error!(error = %e, "API token reload failed; keeping the tokens in use");
                }
                if let Err(e) = app.reload_tls() {
                    crate::api::metrics::tls_reloaded("failed");
                    tracing::error!(error = %e, "API certificate reload failed; keeping the ones in use");
                }
            }
        }
    }
    tracing::info!("stopping");
    crate::service::stopping();
    app.shutdown(SHUTDOWN_GRACE).await;
    Ok(())
}
