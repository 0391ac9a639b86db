//! Files keyward writes, and secrets it reads from files: atomic, owner-only, and locked.
//!
//! Every write goes to a new 0600 temporary file in the target's directory, is fsynced, and only
//! then renamed (or hard-linked, when the target must not exist) into place, after which the
//! directory is fsynced too. A failure at any step leaves the previous file byte-for-byte as it was.
//!
//! This module must never widen a file's permissions or leave a partial file under a real name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error(
        "{} already exists and keyward never overwrites it: choose another path or move the file away",
        .0.display()
    )]
    AlreadyExists(PathBuf),

    #[error(
        "{} has mode {mode:03o}, so other users may read it; it must be readable by you alone: \
         run `chmod 600 {}`",
        path.display(), path.display()
    )]
    NotPrivate { path: PathBuf, mode: u32 },

    #[error("{} belongs to another user; use a file you own", .0.display())]
    NotOwner(PathBuf),

    #[error("{} is larger than {limit} bytes, too large for what it should hold", path.display())]
    TooLarge { path: PathBuf, limit: u64 },

    #[error(
        "another keyward command is changing the wallet right now ({} is locked); \
         wait for it to finish and try again",
        .0.display()
    )]
    Busy(PathBuf),
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Replaces `path` with `bytes` atomically, mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_via_temp(path, bytes, |temp| {
        fs::rename(temp, path).map_err(io_error("replace", path))
    })
}

/// Creates `path` with `bytes` atomically, mode 0600, failing if it already exists (even when
/// another process creates it meanwhile).
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    if path.exists() {
        return Err(FileError::AlreadyExists(path.to_owned()));
    }
    write_via_temp(path, bytes, |temp| {
        // link(2) fails with EEXIST instead of replacing, unlike rename(2).
        let linked = fs::hard_link(temp, path).map_err(|err| match err.kind() {
            io::ErrorKind::AlreadyExists => FileError::AlreadyExists(path.to_owned()),
            _ => io_error("create", path)(err),
        });
        let _ = fs::remove_file(temp);
        linked
    })
}

fn write_via_temp(
    path: &Path,
    bytes: &[u8],
    finish: impl FnOnce(&Path) -> Result<(), FileError>,
) -> Result<(), FileError> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|err| {
        io_error("create a temporary file for", path)(io::Error::other(err.to_string()))
    })?;
    let temp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));

    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io_error("create a temporary file for", path))?;
        file.write_all(bytes).map_err(io_error("write", &temp))?;
        file.sync_all().map_err(io_error("flush to disk", &temp))?;
        finish(&temp)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
        return written;
    }
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error("flush the directory of", path))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Reads a file of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let file = File::open(path).map_err(io_error("read", path))?;
    let mut bytes = Vec::new();
    read_capped(file, path, limit, &mut bytes)?;
    Ok(bytes)
}

/// Reads a file of at most `limit` bytes, or `None` when there is no such file.
pub fn read_optional(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FileError> {
    match read_limited(path, limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Reads all of `file` into `bytes`, refusing more than `limit` bytes.
fn read_capped(file: File, path: &Path, limit: u64, bytes: &mut Vec<u8>) -> Result<(), FileError> {
    file.take(limit + 1)
        .read_to_end(bytes)
        .map_err(io_error("read", path))?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(())
}

/// Reads a file that holds a secret (a password file). It must belong to this user and be
/// readable by nobody else (no group or other permission bits), or it is refused unread.
pub fn read_private(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let file = File::open(path).map_err(io_error("open", path))?;
    // fstat the opened file, so the checked file is the one read.
    let metadata = file.metadata().map_err(io_error("inspect", path))?;
    if metadata.uid() != rustix::process::geteuid().as_raw() {
        return Err(FileError::NotOwner(path.to_owned()));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::NotPrivate {
            path: path.to_owned(),
            mode,
        });
    }
    // Sized for the whole limit up front, so the buffer never reallocates and leaves an
    // unzeroized copy of the secret behind.
    let mut bytes = Zeroizing::new(Vec::with_capacity(limit as usize + 1));
    read_capped(file, path, limit, &mut bytes)?;
    Ok(bytes)
}

/// Creates a directory (and its parents) readable by this user alone.
pub fn create_private_dir(path: &Path) -> Result<(), FileError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_error("create the directory", path))
}

/// An exclusive lock on a lock file, held until dropped. Taken around every read-modify-write of
/// the vault so that two commands cannot both change it and lose one change.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Takes the lock without waiting; a held lock is reported as [`FileError::Busy`].
    pub fn try_exclusive(path: &Path) -> Result<Self, FileError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_error("open the lock file", path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Self { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(FileError::Busy(path.to_owned())),
            Err(err) => Err(io_error("lock", path)(err.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch() -> PathBuf {
        let mut name = [0u8; 8];
        getrandom::fill(&mut name).unwrap();
        let dir = std::env::temp_dir().join(format!("keyward-files-{}", hex::encode(name)));
        create_private_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_replaces_with_mode_0600_and_leaves_no_temp() {
        let dir = scratch();
        let path = dir.join("vault.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn failed_write_leaves_the_old_file_untouched() {
        let dir = scratch();
        let path = dir.join("vault.json");
        write_atomic(&path, b"original").unwrap();
        // A read-only directory makes the temporary file impossible to create. Root ignores
        // directory permissions, so use a path whose parent is a file instead.
        let impossible = path.join("child");
        assert!(write_atomic(&impossible, b"x").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"original");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_new_never_overwrites() {
        let dir = scratch();
        let path = dir.join("out.json");
        write_new(&path, b"first").unwrap();
        let err = write_new(&path, b"second").unwrap_err();
        assert!(matches!(err, FileError::AlreadyExists(_)), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn private_reads_refuse_group_or_world_access() {
        let dir = scratch();
        let path = dir.join("password");
        fs::write(&path, "pw\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_private(&path, 1024).unwrap_err().to_string();
        assert!(
            err.contains("mode 644") && err.contains("chmod 600"),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&path, 1024).unwrap().as_slice(), b"pw\n");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_second_lock_is_refused_while_the_first_is_held() {
        let dir = scratch();
        let path = dir.join("vault.lock");
        let held = FileLock::try_exclusive(&path).unwrap();
        assert!(matches!(
            FileLock::try_exclusive(&path),
            Err(FileError::Busy(_))
        ));
        drop(held);
        FileLock::try_exclusive(&path).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }
}
