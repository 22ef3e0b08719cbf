//! A terminal progress bar for training (indicatif): loss, steps/s and ETA, plus one log line
//! every tenth of the epochs.

use indicatif::{ProgressBar, ProgressStyle};

use crate::train::TrainObserver;

/// Shows a progress bar on stderr while training.
#[derive(Debug)]
pub struct ConsoleProgress {
    bar: Option<ProgressBar>,
    smoothed: Option<f32>,
}

impl ConsoleProgress {
    /// A progress bar that appears when training starts.
    pub fn new() -> Self {
        Self {
            bar: None,
            smoothed: None,
        }
    }
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl TrainObserver for ConsoleProgress {
    fn on_start(&mut self, total_steps: usize) {
        let bar = ProgressBar::new(total_steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps  {per_sec}  ETA {eta}  loss {msg}",
            )
            .expect("the template is valid"),
        );
        self.bar = Some(bar);
    }

    fn on_step(&mut self, step: usize, loss: f32) {
        let smoothed = match self.smoothed {
            Some(s) => 0.98 * s + 0.02 * loss,
            None => loss,
        };
        self.smoothed = Some(smoothed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if step.is_multiple_of(25) {
                bar.set_message(format!("{smoothed:.4}"));
            }
        }
    }

    fn on_epoch(&mut self, epoch: usize, epochs: usize, mean_loss: f32) {
        let every = (epochs / 10).max(1);
        if let Some(bar) = &self.bar
            && ((epoch + 1).is_multiple_of(every) || epoch + 1 == epochs)
        {
            bar.println(format!(
                "epoch {:>5}/{epochs}  mean loss {mean_loss:.5}",
                epoch + 1
            ));
        }
    }

    fn on_end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
