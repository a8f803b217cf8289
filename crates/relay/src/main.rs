//! The `rapport-relay` binary: parses flags, opens the store, binds, prints
//! the listening URL and serves until Ctrl-C or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rapport_relay::config::Cli;
use rapport_relay::server::{serve, AppState};
use rapport_relay::store::sqlite::{OpenOptions, SqliteStore};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rapport-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    cli.limits.validate()?;
    let descriptors = rapport_relay::limits::ensure_descriptors(&cli.limits)?;
    tracing::debug!(descriptors, "file descriptor limit");
    if let Some(dir) = &cli.static_dir {
        if !dir.join("index.html").is_file() {
            return Err(format!("--static-dir {} has no index.html", dir.display()).into());
        }
    }
    let options = OpenOptions { new_incarnation: cli.new_incarnation };
    let store = SqliteStore::open_with(&cli.data_dir, options)
        .map_err(|e| format!("cannot open the store in {}: {e}", cli.data_dir.display()))?;
    tracing::info!(path = %store.path().display(), "store opened");
    if let Some(renewal) = store.renewal() {
        tracing::warn!(reason = %renewal, "every workspace log has a new incarnation");
    }
    let listener =
        tokio::net::TcpListener::bind(cli.bind).await.map_err(|e| format!("cannot listen on {}: {e}", cli.bind))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(Arc::new(store), cli.limits.clone(), cli.static_dir.clone());
    // Tests and scripts read this line to find the port.
    println!("rapport-relay listening on ws://{addr}/sync");
    if cli.static_dir.is_some() {
        println!("rapport-relay serving the app on http://{addr}/");
    }
    serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
