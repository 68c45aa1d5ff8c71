//! One daemon per state directory: an advisory lock on `state_dir/sluice.lock`, holding the
//! owner's PID. Read-only commands (`sluice status`) do not take it and work beside the daemon.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::Context;

/// Held for as long as the process runs on the state directory; the lock goes with the process,
/// even after `kill -9`.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock, or says which process holds it.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<StateLock> {
        std::fs::create_dir_all(state_dir).with_context(|| format!("creating state directory {}", state_dir.display()))?;
        let path = state_dir.join("sluice.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.rewind()?;
                writeln!(file, "{}", std::process::id())?;
                file.sync_data()?;
                Ok(StateLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                anyhow::bail!(
                    "another sluice (PID {}) is running on the state directory {}; stop it first, or give this one another `state_dir`",
                    if pid.is_empty() { "unknown" } else { pid },
                    state_dir.display()
                )
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }
}
