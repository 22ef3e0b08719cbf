//! Datasets: toy 2-D point clouds (each point with a class label, for conditioning work) and
//! image datasets read from their standard files, both named by one [`Dataset`] in the
//! experiment config.

pub mod images;
mod shape;
mod toy;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use images::{ImageDataset, ImageSet, Split};
pub use shape::{DataShape, ImageShape};
pub use toy::{DATA_RANGE, Dataset2d, DatasetKind, Labelled, num_classes};

use crate::error::{DdpmError, Result};

/// A dataset of either kind: a 2-D distribution or an image dataset. In TOML and JSON it is
/// the dataset's name (`"moons"`, `"digits"`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// A toy 2-D distribution.
    Points(DatasetKind),
    /// An image dataset.
    Images(ImageDataset),
}

impl Dataset {
    /// The dataset's name, as in configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Points(kind) => kind.name(),
            Dataset::Images(kind) => kind.name(),
        }
    }

    /// What one example is.
    pub fn shape(self) -> DataShape {
        match self {
            Dataset::Points(_) => DataShape::Points,
            Dataset::Images(kind) => DataShape::Image(kind.shape()),
        }
    }

    /// Number of classes the data is labelled with.
    pub fn num_classes(self) -> usize {
        match self {
            Dataset::Points(kind) => num_classes(kind),
            Dataset::Images(kind) => kind.num_classes(),
        }
    }

    /// The 2-D distribution, if it is one.
    pub fn points(self) -> Option<DatasetKind> {
        match self {
            Dataset::Points(kind) => Some(kind),
            Dataset::Images(_) => None,
        }
    }

    /// The image dataset, if it is one.
    pub fn images(self) -> Option<ImageDataset> {
        match self {
            Dataset::Images(kind) => Some(kind),
            Dataset::Points(_) => None,
        }
    }

    /// Whether the examples are images.
    pub fn is_images(self) -> bool {
        matches!(self, Dataset::Images(_))
    }

    /// Every dataset's name, 2-D ones first.
    pub fn all_names() -> String {
        let points = DatasetKind::ALL.iter().map(|k| k.name());
        let images = ImageDataset::ALL.iter().map(|k| k.name());
        format!(
            "2-D: {}; images: {}",
            points.collect::<Vec<_>>().join(", "),
            images.collect::<Vec<_>>().join(", ")
        )
    }
}

impl From<DatasetKind> for Dataset {
    fn from(kind: DatasetKind) -> Self {
        Dataset::Points(kind)
    }
}

impl From<ImageDataset> for Dataset {
    fn from(kind: ImageDataset) -> Self {
        Dataset::Images(kind)
    }
}

impl PartialEq<DatasetKind> for Dataset {
    fn eq(&self, other: &DatasetKind) -> bool {
        *self == Dataset::Points(*other)
    }
}

impl PartialEq<ImageDataset> for Dataset {
    fn eq(&self, other: &ImageDataset) -> bool {
        *self == Dataset::Images(*other)
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dataset {
    type Err = DdpmError;

    fn from_str(s: &str) -> Result<Self> {
        s.parse::<DatasetKind>()
            .map(Dataset::Points)
            .or_else(|_| s.parse::<ImageDataset>().map(Dataset::Images))
            .map_err(|_| DdpmError::UnknownChoice {
                what: "dataset",
                given: s.to_string(),
                allowed: Self::all_names(),
            })
    }
}

impl Serialize for Dataset {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Which data to train on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// The dataset: a 2-D distribution or an image dataset.
    pub dataset: Dataset,
    /// Points: how many training points to draw. Images: train on the first this many
    /// training images (0: all of them).
    pub n_points: usize,
    /// Images: the directory of the dataset's files (MNIST and CIFAR-10: required;
    /// Fashion-MNIST: optional; digits ship with the crate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Images: held-out images for the metric's floor and the NLL bound (the first of the test
    /// split, or for the digits, which have none, a seeded random share set aside from
    /// training). Points draw their held-out sets fresh and do not read it.
    pub held_out: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: Dataset::Points(DatasetKind::Moons),
            n_points: 8000,
            data_dir: None,
            held_out: 300,
        }
    }
}

impl DataConfig {
    /// Check every field; `prefix` is the path of this section in the experiment config.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        match self.dataset {
            Dataset::Points(_) => {
                if !(16..=10_000_000).contains(&self.n_points) {
                    return Err(DdpmError::invalid(
                        &format!("{prefix}n_points"),
                        self.n_points,
                        "must be in 16..=10000000",
                    ));
                }
                if self.data_dir.is_some() {
                    return Err(DdpmError::invalid(
                        &format!("{prefix}data_dir"),
                        self.data_dir
                            .as_deref()
                            .unwrap_or_else(|| "".as_ref())
                            .display(),
                        "applies to image datasets only; the 2-D datasets are generated",
                    ));
                }
            }
            Dataset::Images(_) => {
                if self.held_out < 2 {
                    return Err(DdpmError::invalid(
                        &format!("{prefix}held_out"),
                        self.held_out,
                        "must be at least 2: the metric's floor fits a Gaussian to them",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Draw the training set of a 2-D dataset (an error for images: see
    /// [`Self::load_images`]).
    pub fn init(&self, seed: u64) -> Result<Dataset2d> {
        match self.dataset {
            Dataset::Points(kind) => Ok(Dataset2d::generate(kind, self.n_points, seed)),
            Dataset::Images(_) => Err(DdpmError::invalid(
                "data.dataset",
                self.dataset,
                "is an image dataset: load it with DataConfig::load_images",
            )),
        }
    }

    /// A fresh draw of `n` points of the 2-D dataset with `seed` (a held-out set for metrics);
    /// an error for images.
    pub fn draw(&self, n: usize, seed: u64) -> Result<Dataset2d> {
        DataConfig {
            n_points: n,
            ..self.clone()
        }
        .init(seed)
    }

    /// Load an image dataset's training and held-out images (`seed` splits the digits).
    pub fn load_images(&self, seed: u64) -> Result<images::ImageData> {
        let Dataset::Images(kind) = self.dataset else {
            return Err(DdpmError::invalid(
                "data.dataset",
                self.dataset,
                "is a 2-D dataset, not images",
            ));
        };
        let (all_train, test) = kind.load(self.data_dir.as_deref(), self.held_out, seed)?;
        if all_train.shape() != kind.shape() {
            return Err(DdpmError::invalid(
                "data.data_dir",
                self.data_dir
                    .as_deref()
                    .unwrap_or_else(|| "".as_ref())
                    .display(),
                format!(
                    "holds {} images, but {kind} images are {}",
                    all_train.shape(),
                    kind.shape()
                ),
            ));
        }
        let train = if self.n_points > 0 {
            all_train.take(self.n_points)
        } else {
            all_train.clone()
        };
        if test.len() < self.held_out {
            return Err(DdpmError::invalid(
                "data.held_out",
                self.held_out,
                format!("must be at most the {} held-out images", test.len()),
            ));
        }
        Ok(images::ImageData {
            train,
            all_train,
            held_out: test.take(self.held_out),
        })
    }
}
