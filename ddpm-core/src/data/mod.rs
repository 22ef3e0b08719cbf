//! Datasets. Toy 2-D point clouds (each point with a class label, kept for conditioning work),
//! and image datasets read from their standard files.

pub mod images;
mod toy;

pub use images::{ImageSet, Split};
pub use toy::{DATA_RANGE, DataConfig, Dataset2d, DatasetKind, num_classes};
