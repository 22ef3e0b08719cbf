//! Time in the chain, said one way.
//!
//! The paper numbers the states of the chain x_0 (data) ... x_T (noise), and its step t goes
//! from x_t to x_{t-1}. Arrays are 0-based: the schedule's coefficient vectors, and a
//! denoiser's time input, are indexed by `i = t - 1`, the index of the step that leaves x_t.
//! The library's public API names a *state* by its [`PaperTime`] (which states to record, the
//! time of a recorded frame) and a *step* by its 0-based index (`usize`); the two conversions
//! below are the only places that shift by one.

use serde::Serialize;

/// A state of the chain by the paper's time t in `0..=T`: x_0 is the data (or the finished
/// samples), x_T pure noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PaperTime(pub usize);

impl PaperTime {
    /// x_0: the data, or the finished samples.
    pub const DATA: PaperTime = PaperTime(0);

    /// The state the step at 0-based `index` starts from: t = index + 1.
    pub fn of_index(index: usize) -> Self {
        PaperTime(index + 1)
    }

    /// The 0-based index of the step from x_t to x_{t-1} (the index of every schedule vector
    /// and of a denoiser's time input): t - 1, or `None` for x_0, which no step leaves.
    pub fn index(self) -> Option<usize> {
        self.0.checked_sub(1)
    }
}

impl std::fmt::Display for PaperTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl PartialEq<usize> for PaperTime {
    fn eq(&self, other: &usize) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_and_the_step_that_leaves_it_are_one_apart() {
        assert_eq!(PaperTime::of_index(0), PaperTime(1));
        assert_eq!(PaperTime(1000).index(), Some(999));
        assert_eq!(PaperTime::DATA.index(), None);
        for i in [0, 7, 999] {
            assert_eq!(PaperTime::of_index(i).index(), Some(i));
        }
        assert!(PaperTime(3) > PaperTime::DATA && PaperTime(3) == 3);
        assert_eq!(format!("t = {}", PaperTime(42)), "t = 42");
    }
}
