//! Files and folders that only frontdoor's user may read: the data folder holds the store, the
//! signing and cookie keys and the outbox of one-time codes. Everything the process creates is
//! private through its umask (one rule for the SQLite files and their `-wal`/`-shm`, the mails,
//! the keys, the pid file and whatever a future feature writes); folders and files left looser
//! by an older version or an operator's copy are tightened at start, with a warning. Where the
//! mode cannot be changed (a read-only mount of shared keys, a folder owned by another user),
//! frontdoor warns and goes on: refusing to start would not make the files any less readable.

use std::io;
use std::path::Path;

/// Mode of data folders.
const DIR_MODE: u32 = 0o700;
/// Mode of data files.
const FILE_MODE: u32 = 0o600;

/// Makes every file and folder the process creates from now on private to its user (0600 and
/// 0700). Called first thing in `main`, before any thread exists.
pub fn restrict_umask() {
    #[cfg(unix)]
    {
        use nix::sys::stat::{Mode, umask};
        umask(Mode::from_bits_truncate(0o077));
    }
}

/// Creates `dir` (and its parents) as a private folder, or tightens it when it exists with
/// access for others.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir);
        }
        tighten(dir, DIR_MODE)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Tightens a data file to 0600 when it exists with access for others.
pub fn tighten_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        if !path.exists() {
            return Ok(());
        }
        tighten(path, FILE_MODE)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & 0o077 == 0 {
        return Ok(());
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{current:o}"),
            error = %e,
            "a data path is readable by others and its mode cannot be tightened"
        );
        return Ok(());
    }
    tracing::warn!(
        path = %path.display(),
        was = format!("{current:o}"),
        now = format!("{mode:o}"),
        "tightened the mode of a data path that others could read"
    );
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_are_private_and_loose_ones_are_tightened() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b");
        ensure_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        ensure_dir(&dir).expect("tighten");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        std::fs::write(&file, "x").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        tighten_file(&file).expect("tighten");
        assert_eq!(mode(&file), 0o600);
        // A stricter mode is left alone; a missing file is no error.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        tighten_file(&file).expect("tighten");
        assert_eq!(mode(&file), 0o400);
        tighten_file(&dir.join("missing")).expect("missing is fine");
    }
}
