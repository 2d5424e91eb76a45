//! Training metrics: one JSON object per line, appended as the run goes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Metric {
    /// An optimizer step.
    Train {
        /// Step number (1-based: steps completed).
        step: usize,
        /// Training loss (mean cross-entropy, nats per token).
        loss: f64,
        /// Learning rate used.
        lr: f64,
        /// Gradient norm before clipping.
        grad_norm: f64,
        /// Training throughput.
        tokens_per_s: f64,
    },
    /// A validation pass.
    Eval {
        /// Step number.
        step: usize,
        /// Validation loss.
        val_loss: f64,
        /// `exp(val_loss)`.
        val_ppl: f64,
    },
}

impl Metric {
    /// The step the record belongs to.
    pub fn step(&self) -> usize {
        match self {
            Metric::Train { step, .. } | Metric::Eval { step, .. } => *step,
        }
    }
}

/// The `metrics.jsonl` of a run.
#[derive(Clone, Debug)]
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// The log at `path`.
    pub fn new(path: &Path) -> Self {
        MetricsLog {
            path: path.to_path_buf(),
        }
    }

    /// All readable records (a line cut short by a kill is skipped).
    pub fn read(&self) -> Result<Vec<Metric>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    /// Drop records after `step` (those a resumed run will redo), and any
    /// line a kill cut short; the kept lines stay byte for byte.
    pub fn truncate_after(&self, step: usize) -> Result<()> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| serde_json::from_str::<Metric>(l).is_ok_and(|m| m.step() <= step))
            .collect();
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        crate::fsutil::write_atomic(&self.path, text.as_bytes())
    }

    /// Append one record.
    pub fn append(&self, metric: &Metric) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        writeln!(file, "{}", serde_json::to_string(metric)?)?;
        Ok(())
    }
}
