//! Datasets. Toy 2-D point clouds (each point with a class label, kept for conditioning work).

mod toy;

pub use toy::{DATA_RANGE, DataConfig, Dataset2d, DatasetKind, num_classes};
