//! The relay's configuration: command-line flags and their environment
//! variables (clap), with the limits every connection is held to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use rapport_protocol::ServerLimits;

/// `rapport-relay`: Rapport's end-to-end encrypted sync relay.
///
/// Stores and forwards opaque encrypted envelopes per workspace; it can
/// authenticate members but never read their data.
#[derive(Debug, Clone, Parser)]
#[command(name = "rapport-relay", version, about, long_about = None)]
pub struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "RAPPORT_RELAY_BIND", default_value = "127.0.0.1:8787")]
    pub bind: SocketAddr,

    /// Directory of the embedded database (created if missing).
    #[arg(long, env = "RAPPORT_RELAY_DATA_DIR", default_value = "./relay-data")]
    pub data_dir: PathBuf,

    /// Also serve the built web app from this directory (unknown paths get
    /// its index.html), so one process is the whole deployment.
    #[arg(long, env = "RAPPORT_RELAY_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Give every workspace's log a new incarnation at start, so every
    /// client pulls everything again and uploads what the relay lacks. Use
    /// it once after restoring a backup the relay cannot detect by itself
    /// (the whole data directory, high-water file included, or a database
    /// moved to another machine); a database file copied back over a newer
    /// one is detected without it.
    /// (No environment variable on purpose: left set, it would make every
    /// restart cost every client a full sync.)
    #[arg(long)]
    pub new_incarnation: bool,

    /// Connection limits.
    #[command(flatten)]
    pub limits: Limits,
}

/// What each connection may do.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest WebSocket frame accepted, in bytes.
    #[arg(long, env = "RAPPORT_RELAY_MAX_FRAME_BYTES", default_value_t = 1024 * 1024)]
    pub max_frame_bytes: u32,

    /// Most envelopes in one push.
    #[arg(long, env = "RAPPORT_RELAY_MAX_ENVELOPES_PER_PUSH", default_value_t = 1000)]
    pub max_envelopes_per_push: u32,

    /// Most entries returned by one pull.
    #[arg(long, env = "RAPPORT_RELAY_MAX_PULL_ENTRIES", default_value_t = 1000)]
    pub max_pull_entries: u32,

    /// Sustained frames per second per connection (token bucket rate).
    #[arg(long, env = "RAPPORT_RELAY_RATE_FRAMES_PER_SEC", default_value_t = 50)]
    pub rate_frames_per_sec: u32,

    /// Frames a connection may send in a burst (token bucket size).
    #[arg(long, env = "RAPPORT_RELAY_RATE_BURST_FRAMES", default_value_t = 200)]
    pub rate_burst_frames: u32,

    /// Sustained bytes per second per connection.
    #[arg(long, env = "RAPPORT_RELAY_RATE_BYTES_PER_SEC", default_value_t = 4 * 1024 * 1024)]
    pub rate_bytes_per_sec: u64,

    /// Bytes a connection may send in a burst; at least --max-frame-bytes.
    #[arg(long, env = "RAPPORT_RELAY_RATE_BURST_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub rate_burst_bytes: u64,

    /// Time allowed between connecting and a valid Hello, in milliseconds.
    #[arg(long, env = "RAPPORT_RELAY_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub handshake_timeout_ms: u64,

    /// Close a connection that sent nothing (not even a pong) for this
    /// long, in milliseconds. The relay pings at a third of it.
    #[arg(long, env = "RAPPORT_RELAY_IDLE_TIMEOUT_MS", default_value_t = 90_000)]
    pub idle_timeout_ms: u64,

    /// Most simultaneous connections (TCP, counted from accept, before and
    /// after the WebSocket upgrade). The relay raises its soft descriptor
    /// limit to fit, or refuses to start.
    #[arg(long, env = "RAPPORT_RELAY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most simultaneous connections from one address (an IPv6 /64 counts
    /// as one address).
    #[arg(long, env = "RAPPORT_RELAY_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub max_connections_per_address: usize,

    /// Most simultaneous authenticated connections to one workspace.
    #[arg(long, env = "RAPPORT_RELAY_MAX_CONNECTIONS_PER_WORKSPACE", default_value_t = 256)]
    pub max_connections_per_workspace: usize,

    /// Time allowed for a client to send a complete HTTP request head
    /// (also the idle time of a kept-alive HTTP connection), in milliseconds.
    #[arg(long, env = "RAPPORT_RELAY_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// A frame the client has not taken within this long closes the
    /// connection (a client that stopped reading), in milliseconds. A
    /// client must take a maximal frame within it (1 MiB in 30 s: 35 KB/s).
    #[arg(long, env = "RAPPORT_RELAY_SEND_TIMEOUT_MS", default_value_t = 30_000)]
    pub send_timeout_ms: u64,

    /// Bytes of replies a connection may have queued, unsent, before it is
    /// closed as too slow; live frames beyond it are dropped and replaced by
    /// `Behind`. At least --max-frame-bytes.
    #[arg(long, env = "RAPPORT_RELAY_MAX_QUEUED_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_queued_bytes: usize,

    /// New workspaces one address may register per hour (a burst of this
    /// many, then refilled evenly).
    #[arg(long, env = "RAPPORT_RELAY_REGISTRATIONS_PER_HOUR", default_value_t = 30)]
    pub registrations_per_hour: u32,
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit that must be positive is zero.
    #[error("--{0} must be greater than zero")]
    Zero(&'static str),
    /// The byte burst could never admit a maximal frame.
    #[error("--rate-burst-bytes ({burst}) must be at least --max-frame-bytes ({frame})")]
    BurstBelowFrame {
        /// Configured burst.
        burst: u64,
        /// Configured frame limit.
        frame: u32,
    },
    /// Frames below this cannot carry a useful message.
    #[error("--max-frame-bytes must be at least 1024, got {0}")]
    FrameTooSmall(u32),
    /// The outgoing queue could never hold a maximal reply.
    #[error("--max-queued-bytes ({queued}) must be at least --max-frame-bytes ({frame})")]
    QueueBelowFrame {
        /// Configured queue bound.
        queued: usize,
        /// Configured frame limit.
        frame: u32,
    },
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 1024 * 1024,
            max_envelopes_per_push: 1000,
            max_pull_entries: 1000,
            rate_frames_per_sec: 50,
            rate_burst_frames: 200,
            rate_bytes_per_sec: 4 * 1024 * 1024,
            rate_burst_bytes: 16 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 90_000,
            max_connections: 10_000,
            max_connections_per_address: 256,
            max_connections_per_workspace: 256,
            header_timeout_ms: 10_000,
            send_timeout_ms: 30_000,
            max_queued_bytes: 2 * 1024 * 1024,
            registrations_per_hour: 30,
        }
    }
}

impl Limits {
    /// Checks that the limits can work together.
    ///
    /// # Errors
    /// [`ConfigError`] naming the flag at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max-envelopes-per-push", u64::from(self.max_envelopes_per_push)),
            ("max-pull-entries", u64::from(self.max_pull_entries)),
            ("rate-frames-per-sec", u64::from(self.rate_frames_per_sec)),
            ("rate-burst-frames", u64::from(self.rate_burst_frames)),
            ("rate-bytes-per-sec", self.rate_bytes_per_sec),
            ("handshake-timeout-ms", self.handshake_timeout_ms),
            ("idle-timeout-ms", self.idle_timeout_ms),
            ("max-connections", self.max_connections as u64),
            ("max-connections-per-address", self.max_connections_per_address as u64),
            ("max-connections-per-workspace", self.max_connections_per_workspace as u64),
            ("header-timeout-ms", self.header_timeout_ms),
            ("send-timeout-ms", self.send_timeout_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
        if self.max_frame_bytes < 1024 {
            return Err(ConfigError::FrameTooSmall(self.max_frame_bytes));
        }
        if self.rate_burst_bytes < u64::from(self.max_frame_bytes) {
            return Err(ConfigError::BurstBelowFrame { burst: self.rate_burst_bytes, frame: self.max_frame_bytes });
        }
        if self.max_queued_bytes < self.max_frame_bytes as usize {
            return Err(ConfigError::QueueBelowFrame { queued: self.max_queued_bytes, frame: self.max_frame_bytes });
        }
        Ok(())
    }

    /// The limits announced to clients in `Welcome`.
    pub fn announced(&self) -> ServerLimits {
        ServerLimits {
            max_frame_bytes: self.max_frame_bytes,
            max_envelopes_per_push: self.max_envelopes_per_push,
            max_pull_entries: self.max_pull_entries,
        }
    }

    /// Handshake timeout as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// Idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// HTTP request-head timeout as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// Send deadline as a duration.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values_and_validate() {
        let cli = Cli::try_parse_from(["rapport-relay"]).expect("defaults parse");
        assert_eq!(cli.bind.to_string(), "127.0.0.1:8787");
        assert_eq!(cli.data_dir, PathBuf::from("./relay-data"));
        assert_eq!(cli.limits.max_frame_bytes, 1024 * 1024);
        assert_eq!(cli.limits.max_frame_bytes, Limits::default().max_frame_bytes);
        assert_eq!(cli.limits.idle_timeout_ms, Limits::default().idle_timeout_ms);
        assert_eq!(cli.limits.validate(), Ok(()));
        assert!(!cli.new_incarnation);
        let cli = Cli::try_parse_from(["rapport-relay", "--new-incarnation"]).expect("the flag parses");
        assert!(cli.new_incarnation);
    }

    #[test]
    fn impossible_limits_are_refused_with_the_flag_name() {
        let mut limits = Limits { rate_frames_per_sec: 0, ..Limits::default() };
        assert_eq!(limits.validate(), Err(ConfigError::Zero("rate-frames-per-sec")));
        limits.rate_frames_per_sec = 1;
        limits.rate_burst_bytes = 10;
        assert!(matches!(limits.validate(), Err(ConfigError::BurstBelowFrame { .. })));
        let limits = Limits { max_queued_bytes: 1000, ..Limits::default() };
        assert!(matches!(limits.validate(), Err(ConfigError::QueueBelowFrame { .. })));
        let limits = Limits { send_timeout_ms: 0, ..Limits::default() };
        assert_eq!(limits.validate(), Err(ConfigError::Zero("send-timeout-ms")));
    }
}
