//! The shape of one example: a 2-D point or an image. Data, networks and figures all speak of it,
//! so it lives here, at the bottom.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The shape of one image: channels, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Colour channels: 1 for grey, 3 for RGB.
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ImageShape {
    /// A shape from its parts.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// Values in one image, `channels * height * width`.
    pub fn size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Images given as rows (`[batch, size]`, channel-major, as the library passes examples)
    /// as the `[batch, channels, height, width]` tensor convolutions take.
    pub fn unflatten(&self, rows: Tensor<2>) -> Tensor<4> {
        let [batch, _] = rows.dims();
        rows.reshape([batch, self.channels, self.height, self.width])
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// What one example of a dataset is: a 2-D point, or an image of a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataShape {
    /// A point of the plane (2 values).
    Points,
    /// An image, flattened channel-major.
    Image(ImageShape),
}

impl DataShape {
    /// Values in one example.
    pub fn size(&self) -> usize {
        match self {
            DataShape::Points => 2,
            DataShape::Image(shape) => shape.size(),
        }
    }
}

impl std::fmt::Display for DataShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataShape::Points => write!(f, "2-D points"),
            DataShape::Image(shape) => write!(f, "{shape} images"),
        }
    }
}
