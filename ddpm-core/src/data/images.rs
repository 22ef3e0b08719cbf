//! Image datasets from their standard files: MNIST and Fashion-MNIST (IDX files, gzipped or not)
//! and CIFAR-10 (its binary batches). None of them ships with ddpm-core: the loaders read a
//! directory the user names, and a missing or damaged file is an error that names it (and, when
//! missing, says where to get it), never a panic or a read past the end.

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::prelude::*;

use super::ImageShape;
use crate::choice::choice_enum;
use crate::error::{DdpmError, Result};

choice_enum! {
    /// An image dataset.
    pub enum ImageDataset ("image dataset") {
        /// 8x8 handwritten digits, shipped with the crate (1797 images).
        Digits = "digits",
        /// Fashion-MNIST 28x28 (Debian's `dataset-fashion-mnist`, or a directory).
        FashionMnist = "fashion_mnist",
        /// MNIST 28x28, from a directory of its IDX files.
        Mnist = "mnist",
        /// CIFAR-10 32x32 RGB, from a directory of its binary batches.
        Cifar10 = "cifar10",
    }
}

impl ImageDataset {
    /// The names of the classes, in label order.
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            ImageDataset::Digits | ImageDataset::Mnist => {
                &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
            }
            ImageDataset::FashionMnist => &[
                "T-shirt",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            ImageDataset::Cifar10 => &[
                "airplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
            ],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Number of classes (every image dataset here has ten).
    pub fn num_classes(self) -> usize {
        10
    }

    /// The shape of one image, known before the files are read.
    pub fn shape(self) -> ImageShape {
        match self {
            ImageDataset::Digits => ImageShape::new(1, 8, 8),
            ImageDataset::FashionMnist | ImageDataset::Mnist => ImageShape::new(1, 28, 28),
            ImageDataset::Cifar10 => ImageShape::new(3, 32, 32),
        }
    }

    /// Load the training split and the held-out split (the test split; for the digits, which
    /// have none, `held_out` images set aside at random with `seed`). `dir` holds the files
    /// (MNIST and CIFAR-10: required; Fashion-MNIST: optional, see [`load_fashion_mnist`];
    /// digits: not used).
    pub fn load(
        self,
        dir: Option<&Path>,
        held_out: usize,
        seed: u64,
    ) -> Result<(ImageSet, ImageSet)> {
        let required = || {
            dir.ok_or_else(|| {
                DdpmError::invalid(
                    "data.data_dir",
                    "none",
                    format!(
                        "{self} is not shipped with ddpm-core: name the directory of its files \
                         (--data-dir DIR)"
                    ),
                )
            })
        };
        Ok(match self {
            ImageDataset::Digits => load_digits()?.split(held_out, seed)?,
            ImageDataset::FashionMnist => (
                load_fashion_mnist(dir, Split::Train)?,
                load_fashion_mnist(dir, Split::Test)?,
            ),
            ImageDataset::Mnist => {
                let dir = required()?;
                (
                    load_mnist(dir, Split::Train)?,
                    load_mnist(dir, Split::Test)?,
                )
            }
            ImageDataset::Cifar10 => {
                let dir = required()?;
                (
                    load_cifar10(dir, Split::Train)?,
                    load_cifar10(dir, Split::Test)?,
                )
            }
        })
    }
}

/// An image dataset's training images and held-out ones.
#[derive(Debug, Clone)]
pub struct ImageData {
    /// What the diffusion model trains on (the first `data.n_points` of the training split,
    /// or all of it).
    pub train: ImageSet,
    /// The whole training split: what the classifier trains on, and the real images the
    /// Fréchet distance compares with.
    pub all_train: ImageSet,
    /// Held out from both.
    pub held_out: ImageSet,
}

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training images.
    Train,
    /// The held-out test images.
    Test,
}

/// Images of one size with a class label each, as stored: 8-bit pixels, channel-major
/// (`[n, channels, height, width]`, the layout of the files and of burn's `Conv2d`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Pixels, 0-255, image after image.
    pub pixels: Vec<u8>,
    /// One class per image.
    pub labels: Vec<usize>,
    /// Channels per image (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// Number of classes; every label is below it.
    pub num_classes: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image: channels x height x width.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.image_size();
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Every pixel scaled to [-1, 1] (0 -> -1, 255 -> 1), the range DDPM works in.
    pub fn to_unit_range(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| to_unit(p)).collect()
    }

    /// The shape of one image.
    pub fn shape(&self) -> ImageShape {
        ImageShape::new(self.channels, self.height, self.width)
    }

    /// The images at `indices`, in [-1, 1], as a `[indices.len(), channels * height * width]`
    /// tensor (one image per row, channel-major): one mini-batch.
    pub fn batch(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        let values: Vec<f32> = indices
            .iter()
            .flat_map(|&i| self.image(i).iter().map(|&p| to_unit(p)))
            .collect();
        Tensor::<1>::from_floats(values.as_slice(), device)
            .reshape([indices.len(), self.image_size()])
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        ImageSet {
            pixels: indices
                .iter()
                .flat_map(|&i| self.image(i))
                .copied()
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            ..self.clone_empty()
        }
    }

    /// The first `n` images (all if there are fewer).
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        self.subset(&(0..n).collect::<Vec<_>>())
    }

    /// The images of `class`, in order.
    pub fn of_class(&self, class: usize) -> ImageSet {
        let indices: Vec<usize> = (0..self.len())
            .filter(|&i| self.labels[i] == class)
            .collect();
        self.subset(&indices)
    }

    /// A seeded random split into `len - held_out` training images and `held_out` held-out
    /// ones (for a set, like the 8x8 digits, that comes without a test split).
    pub fn split(&self, held_out: usize, seed: u64) -> Result<(ImageSet, ImageSet)> {
        if held_out == 0 || held_out >= self.len() {
            return Err(DdpmError::invalid(
                "held_out",
                held_out,
                format!("must be in 1..{} (the number of images)", self.len()),
            ));
        }
        let order = crate::rng::NoiseSource::new(seed).permutation(self.len());
        let (train, test) = order.split_at(self.len() - held_out);
        Ok((self.subset(train), self.subset(test)))
    }

    /// How many images of each class, `[count of class 0, ...]`.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &label in &self.labels {
            counts[label] += 1;
        }
        counts
    }

    fn clone_empty(&self) -> ImageSet {
        ImageSet {
            pixels: Vec::new(),
            labels: Vec::new(),
            ..*self
        }
    }
}

/// A pixel 0-255 in [-1, 1].
fn to_unit(p: u8) -> f32 {
    f32::from(p) / 127.5 - 1.0
}

/// A value in [-1, 1] back to a pixel 0-255 (rounded, clamped).
pub fn to_pixel(v: f32) -> u8 {
    ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

fn data_error(path: &Path, message: impl Into<String>) -> DdpmError {
    DdpmError::DataFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The bytes gzip-compressed in `bytes`, read from `path` (named in the error).
fn gunzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| data_error(path, format!("not a readable gzip file: {e}")))?;
    Ok(out)
}

/// The whole of a file, gunzipped when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DdpmError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        gunzip(&raw, path)
    } else {
        Ok(raw)
    }
}

/// An IDX array of unsigned bytes (the MNIST format): its dimensions and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub values: Vec<u8>,
}

/// Read an IDX file of unsigned bytes, gzipped or not: two zero bytes, the type 0x08, the number
/// of dimensions, each dimension as a big-endian u32, then the values. The file's length must
/// match its header exactly.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    let header = |n: usize| {
        bytes.get(..n).ok_or_else(|| {
            data_error(
                path,
                format!(
                    "truncated: {} bytes, shorter than its IDX header ({n})",
                    bytes.len()
                ),
            )
        })
    };
    let magic = header(4)?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(data_error(
            path,
            "not an IDX file (it must start with two zero bytes)",
        ));
    }
    if magic[2] != 0x08 {
        return Err(data_error(
            path,
            format!(
                "IDX value type 0x{:02x}, expected 0x08 (unsigned bytes)",
                magic[2]
            ),
        ));
    }
    let ndims = usize::from(magic[3]);
    let start = 4 + 4 * ndims;
    let dims: Vec<usize> = header(start)?[4..]
        .chunks(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| data_error(path, format!("IDX dimensions {dims:?} overflow")))?;
    let found = bytes.len() - start;
    if found != expected {
        let what = if found < expected {
            "truncated"
        } else {
            "too long"
        };
        return Err(data_error(
            path,
            format!("{what}: dimensions {dims:?} need {expected} bytes of values, found {found}"),
        ));
    }
    Ok(IdxArray {
        dims,
        values: bytes[start..].to_vec(),
    })
}

/// The first of `names` (each also tried with `.gz`) that exists in `dir`.
fn find(dir: &Path, names: &[&str], dataset: &str, source: &str) -> Result<PathBuf> {
    for name in names {
        for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(data_error(
        dir,
        format!(
            "no {} (or .gz) here; {dataset} does not ship with ddpm-core: {source}",
            names.join(" or ")
        ),
    ))
}

/// MNIST or Fashion-MNIST (same format) from `dir`: `train-images-idx3-ubyte` and
/// `train-labels-idx1-ubyte` (or `t10k-...` for the test split), gzipped or not. `dataset` and
/// `source` name it and say where to get it, for the error when a file is missing.
pub fn load_idx_images(dir: &Path, split: Split, dataset: &str, source: &str) -> Result<ImageSet> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = find(
        dir,
        &[
            &format!("{prefix}-images-idx3-ubyte"),
            &format!("{prefix}-images.idx3-ubyte"),
        ],
        dataset,
        source,
    )?;
    let labels_path = find(
        dir,
        &[
            &format!("{prefix}-labels-idx1-ubyte"),
            &format!("{prefix}-labels.idx1-ubyte"),
        ],
        dataset,
        source,
    )?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    let [n, height, width] = images.dims[..] else {
        return Err(data_error(
            &images_path,
            format!(
                "images must be 3-D [n, rows, columns], found dimensions {:?}",
                images.dims
            ),
        ));
    };
    if labels.dims != [n] {
        return Err(data_error(
            &labels_path,
            format!("{:?} labels for {n} images", labels.dims),
        ));
    }
    if let Some(bad) = labels.values.iter().find(|&&l| l > 9) {
        return Err(data_error(
            &labels_path,
            format!("label {bad}, expected 0-9"),
        ));
    }
    Ok(ImageSet {
        pixels: images.values,
        labels: labels.values.iter().map(|&l| usize::from(l)).collect(),
        channels: 1,
        height,
        width,
        num_classes: 10,
    })
}

/// Where MNIST's files come from.
pub const MNIST_SOURCE: &str = "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
    t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (from a mirror of Yann LeCun's MNIST \
    page, e.g. the ones torchvision lists) into this directory";

/// Where CIFAR-10's files come from.
pub const CIFAR10_SOURCE: &str = "download cifar-10-binary.tar.gz from \
    https://www.cs.toronto.edu/~kriz/cifar.html and unpack it here (data_batch_1.bin ... \
    data_batch_5.bin, test_batch.bin)";

/// MNIST from `dir` (see [`load_idx_images`]).
pub fn load_mnist(dir: &Path, split: Split) -> Result<ImageSet> {
    load_idx_images(dir, split, "MNIST", MNIST_SOURCE)
}

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Where Fashion-MNIST's files come from.
pub const FASHION_MNIST_SOURCE: &str = "on Debian or Ubuntu `apt-get install dataset-fashion-mnist` \
    installs it in /usr/share/datasets/fashion-mnist; elsewhere download the four files from \
    https://github.com/zalandoresearch/fashion-mnist into a directory and name it (or set \
    DDPM_FASHION_MNIST_DIR)";

/// Fashion-MNIST (Xiao et al. 2017; 28x28 grey images of 10 kinds of garment, MIT licence) from
/// `dir`, or when `None` from `$DDPM_FASHION_MNIST_DIR`, else [`FASHION_MNIST_DIR`].
pub fn load_fashion_mnist(dir: Option<&Path>, split: Split) -> Result<ImageSet> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::var_os("DDPM_FASHION_MNIST_DIR")
            .map_or_else(|| PathBuf::from(FASHION_MNIST_DIR), PathBuf::from),
    };
    load_idx_images(&dir, split, "Fashion-MNIST", FASHION_MNIST_SOURCE)
}

/// Bytes per CIFAR-10 record: a label, then 3 x 32 x 32 pixels (red, green, blue planes).
const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;

/// CIFAR-10 from `dir` (or its `cifar-10-batches-bin` subdirectory, as the archive unpacks):
/// `data_batch_1.bin` to `data_batch_5.bin` for training, `test_batch.bin` for testing. Each
/// record is a label byte and 3072 pixel bytes.
pub fn load_cifar10(dir: &Path, split: Split) -> Result<ImageSet> {
    let nested = dir.join("cifar-10-batches-bin");
    let dir = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    let names: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".to_string()],
    };
    let mut set = ImageSet {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: 3,
        height: 32,
        width: 32,
        num_classes: 10,
    };
    for name in &names {
        let path = find(&dir, &[name], "CIFAR-10", CIFAR10_SOURCE)?;
        let bytes = read_maybe_gz(&path)?;
        if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
            return Err(data_error(
                &path,
                format!(
                    "{} bytes is not a whole number of {CIFAR_RECORD}-byte records (truncated?)",
                    bytes.len()
                ),
            ));
        }
        for record in bytes.chunks(CIFAR_RECORD) {
            let label = record[0];
            if label > 9 {
                return Err(data_error(&path, format!("label {label}, expected 0-9")));
            }
            set.labels.push(usize::from(label));
            set.pixels.extend_from_slice(&record[1..]);
        }
    }
    Ok(set)
}

/// The 8x8 handwritten digits shipped with ddpm-core (`data/digits.csv.gz`, UCI optdigits,
/// CC BY 4.0; see `data/README.md`): 1797 grey images, 10 classes. Their pixels, 0-16 in the
/// file, are scaled to 0-255 as round(255 v / 16), like every other set.
pub fn load_digits() -> Result<ImageSet> {
    const FILE: &[u8] = include_bytes!("../../data/digits.csv.gz");
    let path = Path::new("ddpm-core/data/digits.csv.gz");
    let text = String::from_utf8(gunzip(FILE, path)?)
        .map_err(|e| data_error(path, format!("not UTF-8 text: {e}")))?;
    let mut set = ImageSet {
        pixels: Vec::with_capacity(1797 * 64),
        labels: Vec::with_capacity(1797),
        channels: 1,
        height: 8,
        width: 8,
        num_classes: 10,
    };
    for (row, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let values: Vec<u32> = line
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.fract() == 0.0 && *x >= 0.0)
            })
            .map(|v| v.map(|x| x as u32))
            .collect::<Option<_>>()
            .ok_or_else(|| data_error(path, format!("line {}: not 65 integers", row + 1)))?;
        match values[..] {
            [ref pixels @ .., label] if pixels.len() == 64 && label <= 9 => {
                if let Some(bad) = pixels.iter().find(|&&p| p > 16) {
                    return Err(data_error(
                        path,
                        format!("line {}: pixel {bad} > 16", row + 1),
                    ));
                }
                set.pixels
                    .extend(pixels.iter().map(|&p| ((p * 255 + 8) / 16) as u8));
                set.labels.push(label as usize);
            }
            _ => {
                return Err(data_error(
                    path,
                    format!("line {}: expected 64 pixels and a label 0-9", row + 1),
                ));
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A fresh directory for one test's files.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ddpm-images-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn idx(dims: &[u32], values: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(values);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Three 2 x 3 images with pixel values 0..18, labels 7, 0, 9.
    fn write_mnist(dir: &Path, compress: bool) {
        let pixels: Vec<u8> = (0..18).collect();
        let files = [
            ("t10k-images-idx3-ubyte", idx(&[3, 2, 3], &pixels)),
            ("t10k-labels-idx1-ubyte", idx(&[3], &[7, 0, 9])),
        ];
        for (name, bytes) in files {
            if compress {
                std::fs::write(dir.join(format!("{name}.gz")), gzip(&bytes)).unwrap();
            } else {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
    }

    #[test]
    fn the_shipped_digits_are_the_uci_test_set() {
        let set = load_digits().unwrap();
        assert_eq!(
            (set.len(), set.channels, set.height, set.width),
            (1797, 1, 8, 8)
        );
        let mut counts = [0usize; 10];
        for &l in &set.labels {
            counts[l] += 1;
        }
        // scikit-learn's load_digits: the same counts per digit.
        assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        // The first image is a 0; its first row is 0 0 5 13 9 1 0 0 in the file's 0-16 units.
        assert_eq!(set.labels[0], 0);
        assert_eq!(&set.image(0)[..8], &[0, 0, 80, 207, 143, 16, 0, 0]);
        assert_eq!(set.pixels.iter().max(), Some(&255));
    }

    #[test]
    fn idx_images_load_plain_or_gzipped() {
        for compress in [false, true] {
            let dir = scratch(&format!("idx-{compress}"));
            write_mnist(&dir, compress);
            let set = load_mnist(&dir, Split::Test).unwrap();
            assert_eq!(
                (set.len(), set.channels, set.height, set.width),
                (3, 1, 2, 3)
            );
            assert_eq!(set.labels, [7, 0, 9]);
            assert_eq!(set.image(1), &[6, 7, 8, 9, 10, 11]);
            let unit = set.to_unit_range();
            assert_eq!((unit[0], *unit.last().unwrap()), (-1.0, 17.0 / 127.5 - 1.0));
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn damaged_idx_files_are_errors_that_name_the_file() {
        let dir = scratch("idx-bad");
        write_mnist(&dir, false);
        let images = dir.join("t10k-images-idx3-ubyte");
        let labels = dir.join("t10k-labels-idx1-ubyte");
        let message = || load_mnist(&dir, Split::Test).unwrap_err().to_string();

        // The missing split: says which files and where to get them.
        let err = load_mnist(&dir, Split::Train).unwrap_err().to_string();
        assert!(
            err.contains("train-images-idx3-ubyte") && err.contains("download"),
            "{err}"
        );

        let good = std::fs::read(&images).unwrap();
        std::fs::write(&images, &good[..good.len() - 5]).unwrap();
        let err = message();
        assert!(
            err.contains("t10k-images") && err.contains("truncated") && err.contains("found 13"),
            "{err}"
        );
        std::fs::write(&images, &good[..6]).unwrap();
        assert!(
            message().contains("shorter than its IDX header"),
            "{}",
            message()
        );
        std::fs::write(&images, [&good[..], &[1, 2]].concat()).unwrap();
        assert!(message().contains("too long"), "{}", message());
        std::fs::write(&images, [&[1u8, 0], &good[2..]].concat()).unwrap();
        assert!(message().contains("not an IDX file"), "{}", message());
        std::fs::write(&images, [&good[..2], &[0x0d], &good[3..]].concat()).unwrap();
        assert!(message().contains("0x0d"), "{}", message());
        // A header whose dimensions overflow does not allocate them.
        std::fs::write(&images, idx(&[u32::MAX, u32::MAX, u32::MAX], &[])).unwrap();
        assert!(
            message().contains("overflow") || message().contains("truncated"),
            "{}",
            message()
        );
        std::fs::write(&images, &gzip(&good)[..20]).unwrap();
        assert!(message().contains("gzip"), "{}", message());
        std::fs::write(&images, idx(&[18], &(0..18).collect::<Vec<u8>>())).unwrap();
        assert!(message().contains("3-D"), "{}", message());

        std::fs::write(&images, &good).unwrap();
        std::fs::write(&labels, idx(&[2], &[1, 2])).unwrap();
        assert!(message().contains("labels for 3 images"), "{}", message());
        std::fs::write(&labels, idx(&[3], &[1, 2, 10])).unwrap();
        assert!(message().contains("label 10"), "{}", message());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cifar_batches_load_and_damaged_ones_are_errors() {
        let dir = scratch("cifar");
        let nested = dir.join("cifar-10-batches-bin");
        std::fs::create_dir_all(&nested).unwrap();
        let record = |label: u8, value: u8| {
            let mut r = vec![label];
            r.extend(std::iter::repeat_n(value, 3072));
            r
        };
        std::fs::write(
            nested.join("test_batch.bin"),
            [record(3, 10), record(9, 200)].concat(),
        )
        .unwrap();
        let set = load_cifar10(&dir, Split::Test).unwrap();
        assert_eq!(
            (set.len(), set.channels, set.height, set.width),
            (2, 3, 32, 32)
        );
        assert_eq!(set.labels, [3, 9]);
        assert!(set.image(1).iter().all(|&p| p == 200));

        let err = load_cifar10(&dir, Split::Train).unwrap_err().to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("cs.toronto.edu"),
            "{err}"
        );
        std::fs::write(nested.join("test_batch.bin"), &record(3, 10)[..3000]).unwrap();
        let err = load_cifar10(&dir, Split::Test).unwrap_err().to_string();
        assert!(
            err.contains("test_batch.bin") && err.contains("truncated"),
            "{err}"
        );
        std::fs::write(nested.join("test_batch.bin"), record(11, 0)).unwrap();
        let err = load_cifar10(&dir, Split::Test).unwrap_err().to_string();
        assert!(err.contains("label 11"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
