//! One error type for the whole library. Every message names the field (or file) at fault and,
//! where there is one, the allowed range, so a learner who mistypes a config knows what to change.

use std::path::PathBuf;

/// Everything that can go wrong in `ddpm-core`.
#[derive(Debug, thiserror::Error)]
pub enum DdpmError {
    /// A configuration value outside its allowed range.
    #[error("invalid config: `{field}` = {value}: {expected}")]
    InvalidConfig {
        /// Dotted path of the field, e.g. `diffusion.beta_end`.
        field: String,
        /// The offending value, as the user wrote it.
        value: String,
        /// What would have been accepted.
        expected: String,
    },

    /// A name (dataset, schedule, backend, ...) that is not one of the known choices.
    #[error("unknown {what} `{given}`; expected one of: {allowed}")]
    UnknownChoice {
        /// What kind of choice was being parsed.
        what: &'static str,
        /// The text given.
        given: String,
        /// The accepted names, comma separated.
        allowed: String,
    },

    /// A config file that could not be parsed.
    #[error("cannot parse config file {path}: {message}")]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// What the parser said (it names the field and line).
        message: String,
    },

    /// Training diverged: the loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}, step {step}: loss = {loss}; try a smaller `train.learning_rate` or enable `train.grad_clip`"
    )]
    Diverged {
        /// Epoch (0-based) at which the loss stopped being finite.
        epoch: usize,
        /// Global optimizer step.
        step: usize,
        /// The non-finite loss value.
        loss: f32,
    },

    /// Sampling produced non-finite values.
    #[error("sampling produced non-finite values at timestep {timestep}")]
    NonFiniteSamples {
        /// The reverse-process step at which it was detected.
        timestep: usize,
    },

    /// Input data that the operation cannot use (empty point clouds, mismatched shapes, ...).
    #[error("invalid input `{field}`: {message}")]
    InvalidInput {
        /// The argument at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// A backend that was not compiled in, or could not start.
    #[error("backend `{backend}` is not available: {reason}")]
    BackendUnavailable {
        /// The backend asked for.
        backend: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// Saving or loading a model record failed.
    #[error("model record {path}: {message}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// burn's message.
        message: String,
    },

    /// Drawing a chart failed.
    #[error("chart `{chart}`: {message}")]
    Plot {
        /// Which chart.
        chart: &'static str,
        /// The drawing backend's message.
        message: String,
    },

    /// The output directory cannot be created or written to.
    #[error("cannot write to the output directory {path} (`--out-dir`): {cause}")]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error (in the message, so not repeated as a source).
        cause: std::io::Error,
    },

    /// A dataset file that is missing, truncated or not in the format its loader reads.
    #[error("dataset file {path}: {message}")]
    DataFile {
        /// The file (or the directory it was looked for in).
        path: PathBuf,
        /// What is wrong, and for a missing file where to get it.
        message: String,
    },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl DdpmError {
    /// Shorthand for [`DdpmError::InvalidConfig`].
    pub fn invalid(
        field: &str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Self::InvalidConfig {
            field: field.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Shorthand for [`DdpmError::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`DdpmError`].
pub type Result<T, E = DdpmError> = std::result::Result<T, E>;
