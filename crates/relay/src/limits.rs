//! The process's file descriptor limit: every connection holds one, so at
//! start-up the relay raises its soft `RLIMIT_NOFILE` to what
//! `--max-connections` needs, or refuses to start and says why. Without
//! this a slow-connection attack ends in "Too many open files" for everyone
//! instead of a `503` for the excess.
//!
//! `libc` is used directly (two system calls) rather than a wrapper crate:
//! it is already in the dependency tree through tokio.

use crate::config::Limits;
use crate::server::{MAX_REFUSING, RESERVED_DESCRIPTORS};

/// The descriptor limit cannot fit the configured connections.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    /// The hard limit is below what is needed.
    #[error(
        "--max-connections {connections} needs {needed} file descriptors, but the hard limit is {hard} \
         (ulimit -Hn); lower --max-connections or raise the limit (e.g. LimitNOFILE= in the systemd unit)"
    )]
    HardLimit {
        /// Configured connections.
        connections: usize,
        /// Descriptors needed.
        needed: u64,
        /// The hard limit.
        hard: u64,
    },
    /// The system call failed.
    #[error("cannot {action} the file descriptor limit: {error}")]
    System {
        /// `read` or `raise`.
        action: &'static str,
        /// The OS error.
        error: String,
    },
}

/// Descriptors needed for `limits`: one per connection, the refusals in
/// flight, and the relay's own files.
pub fn descriptors_needed(limits: &Limits) -> u64 {
    limits.max_connections as u64 + MAX_REFUSING as u64 + RESERVED_DESCRIPTORS
}

/// What to do given the current soft and hard limits: `Ok(None)` when the
/// soft limit suffices, `Ok(Some(n))` to raise it to `n`.
///
/// # Errors
/// [`DescriptorError::HardLimit`] when even the hard limit is too low.
pub fn plan(limits: &Limits, soft: u64, hard: u64) -> Result<Option<u64>, DescriptorError> {
    let needed = descriptors_needed(limits);
    if soft >= needed {
        Ok(None)
    } else if hard >= needed {
        Ok(Some(needed))
    } else {
        Err(DescriptorError::HardLimit { connections: limits.max_connections, needed, hard })
    }
}

/// Raises the soft descriptor limit to fit `limits` (never lowers it).
/// Returns the soft limit in force.
///
/// # Errors
/// [`DescriptorError`] when it cannot fit.
#[cfg(unix)]
pub fn ensure_descriptors(limits: &Limits) -> Result<u64, DescriptorError> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) } != 0 {
        return Err(DescriptorError::System { action: "read", error: std::io::Error::last_os_error().to_string() });
    }
    // rlim_t is u64 on Linux but not on every unix.
    #[allow(clippy::unnecessary_cast)]
    let (soft, hard) = (current.rlim_cur as u64, current.rlim_max as u64);
    match plan(limits, soft, hard)? {
        None => Ok(soft),
        Some(raised) => {
            let wanted = libc::rlimit { rlim_cur: raised as libc::rlim_t, rlim_max: current.rlim_max };
            // SAFETY: setrlimit reads the struct we own.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
                return Err(DescriptorError::System {
                    action: "raise",
                    error: std::io::Error::last_os_error().to_string(),
                });
            }
            Ok(raised)
        }
    }
}

/// Elsewhere there is no such limit to manage.
#[cfg(not(unix))]
pub fn ensure_descriptors(limits: &Limits) -> Result<u64, DescriptorError> {
    Ok(descriptors_needed(limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_within_the_hard_one_or_start_up_is_refused() {
        let limits = Limits { max_connections: 1000, ..Limits::default() };
        let needed = descriptors_needed(&limits);
        assert_eq!(plan(&limits, needed, needed), Ok(None));
        assert_eq!(plan(&limits, 256, 1 << 20), Ok(Some(needed)));
        let err = plan(&limits, 256, 512).expect_err("too low");
        assert!(err.to_string().contains("--max-connections 1000"), "{err}");
        assert!(err.to_string().contains("hard limit is 512"), "{err}");
    }
}
