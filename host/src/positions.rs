//! Durable source positions, one small JSON file per pipeline under the
//! state directory. A position is written only after the sink acknowledged
//! everything before it; the write is atomic (temp file, fsync, rename,
//! fsync of the directory), so a crash leaves the old or the new position,
//! never a torn one.
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
#[error("position file {path}: {message}")]
pub struct PositionError {
    path: PathBuf,
    message: String,
}

pub struct PositionStore {
    dir: PathBuf,
    path: PathBuf,
}

impl PositionStore {
    pub fn new(state_dir: &Path, pipeline: &str) -> Self {
        PositionStore {
            dir: state_dir.to_owned(),
            path: state_dir.join(format!("{pipeline}.position.json")),
        }
    }

    fn error(&self, message: impl ToString) -> PositionError {
        PositionError {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>, PositionError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.error(format!("unreadable ({e}); delete it to start over"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Deletes the stored position; false when there was none.
    pub fn remove(&self) -> Result<bool, PositionError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    pub fn save<T: Serialize>(&self, position: &T) -> Result<(), PositionError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.error(e))?;
        let staged = self.path.with_extension("json.tmp");
        let mut file = File::create(&staged).map_err(|e| self.error(e))?;
        file.write_all(&serde_json::to_vec(position).map_err(|e| self.error(e))?)
            .map_err(|e| self.error(e))?;
        file.sync_all().map_err(|e| self.error(e))?;
        fs::rename(&staged, &self.path).map_err(|e| self.error(e))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| self.error(e))
    }
}
