//! The pixel formats LiveKit knows, with the protocol's numbers, and the memory layout of each.

use crate::error::VideoError;

/// A pixel format. The numbers are LiveKit's (`VideoBufferType` in its protocol). Packed formats
/// are named by byte order in memory: `RGBA` is R, G, B, A. Planar formats are tightly packed,
/// plane after plane; chroma planes are `ceil(width / 2)` wide (and `ceil(height / 2)` tall for
/// the 4:2:0 formats).
// The variant names are LiveKit's JavaScript ones, which the binding exports as they are.
#[cfg_attr(feature = "napi", napi_derive::napi)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(clippy::upper_case_acronyms)]
pub enum VideoBufferType {
  /// 4 bytes per pixel: R, G, B, A.
  RGBA = 0,
  /// 4 bytes per pixel: A, B, G, R.
  ABGR = 1,
  /// 4 bytes per pixel: A, R, G, B.
  ARGB = 2,
  /// 4 bytes per pixel: B, G, R, A.
  BGRA = 3,
  /// 3 bytes per pixel: R, G, B.
  RGB24 = 4,
  /// 4:2:0 planar: Y, U, V planes.
  I420 = 5,
  /// 4:2:0 planar with alpha: Y, U, V, then a full-size A plane.
  I420A = 6,
  /// 4:2:2 planar: Y, then U and V at half width, full height.
  I422 = 7,
  /// 4:4:4 planar: Y, U, V, all full size.
  I444 = 8,
  /// 4:2:0 planar, 10 bits in little-endian 16-bit samples (2 bytes per sample).
  I010 = 9,
  /// 4:2:0 semi-planar: Y, then one plane of interleaved U, V pairs.
  NV12 = 10,
}

impl VideoBufferType {
  /// Every format, in protocol order.
  pub const ALL: [VideoBufferType; 11] = [
    Self::RGBA,
    Self::ABGR,
    Self::ARGB,
    Self::BGRA,
    Self::RGB24,
    Self::I420,
    Self::I420A,
    Self::I422,
    Self::I444,
    Self::I010,
    Self::NV12,
  ];

  /// The format with LiveKit's number `n`.
  pub fn from_u32(n: u32) -> Result<Self, VideoError> {
    Self::ALL
      .get(n as usize)
      .copied()
      .ok_or(VideoError::InvalidBufferType { given: i64::from(n) })
  }

  /// The name LiveKit uses (`RGBA`, `I420`, ...).
  pub fn name(self) -> &'static str {
    match self {
      Self::RGBA => "RGBA",
      Self::ABGR => "ABGR",
      Self::ARGB => "ARGB",
      Self::BGRA => "BGRA",
      Self::RGB24 => "RGB24",
      Self::I420 => "I420",
      Self::I420A => "I420A",
      Self::I422 => "I422",
      Self::I444 => "I444",
      Self::I010 => "I010",
      Self::NV12 => "NV12",
    }
  }

  /// True for formats with one interleaved plane (RGBA, ABGR, ARGB, BGRA, RGB24).
  pub fn is_packed(self) -> bool {
    matches!(self, Self::RGBA | Self::ABGR | Self::ARGB | Self::BGRA | Self::RGB24)
  }

  /// The planes of a `width` x `height` frame in this format, tightly packed one after another.
  /// Chroma dimensions round up for odd sizes (chroma width = ceil(width / 2)).
  pub fn layout(self, width: u32, height: u32) -> FrameLayout {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    // (stride in bytes, rows) per plane
    let planes: &[(usize, usize)] = match self {
      Self::RGBA | Self::ABGR | Self::ARGB | Self::BGRA => &[(w * 4, h)],
      Self::RGB24 => &[(w * 3, h)],
      Self::I420 => &[(w, h), (cw, ch), (cw, ch)],
      Self::I420A => &[(w, h), (cw, ch), (cw, ch), (w, h)],
      Self::I422 => &[(w, h), (cw, h), (cw, h)],
      Self::I444 => &[(w, h), (w, h), (w, h)],
      Self::I010 => &[(w * 2, h), (cw * 2, ch), (cw * 2, ch)],
      Self::NV12 => &[(w, h), (cw * 2, ch)],
    };
    let mut layout = FrameLayout {
      planes: [PlaneLayout::default(); 4],
      count: planes.len(),
      size: 0,
    };
    for (i, &(stride, rows)) in planes.iter().enumerate() {
      layout.planes[i] = PlaneLayout {
        offset: layout.size,
        stride,
        rows,
        len: stride * rows,
      };
      layout.size += stride * rows;
    }
    layout
  }
}

impl std::fmt::Display for VideoBufferType {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str(self.name())
  }
}

/// Where one plane lies in a frame's buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaneLayout {
  /// Byte offset from the start of the buffer.
  pub offset: usize,
  /// Bytes per row.
  pub stride: usize,
  /// Number of rows.
  pub rows: usize,
  /// `stride * rows`.
  pub len: usize,
}

/// The planes of a frame, in order (Y, U, V, A / Y, UV / one packed plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
  planes: [PlaneLayout; 4],
  count: usize,
  /// Total bytes of the frame.
  pub size: usize,
}

impl FrameLayout {
  /// The planes, in order.
  pub fn planes(&self) -> &[PlaneLayout] {
    &self.planes[..self.count]
  }
}

/// The rotation to apply to a frame when it is shown. The numbers are LiveKit's.
#[cfg_attr(feature = "napi", napi_derive::napi)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum VideoRotation {
  /// Upright.
  #[default]
  Rotation0 = 0,
  /// A quarter turn clockwise.
  Rotation90 = 1,
  /// Upside down.
  Rotation180 = 2,
  /// Three quarter turns clockwise.
  Rotation270 = 3,
}

impl VideoRotation {
  /// The rotation with LiveKit's number `n` (0..=3).
  pub fn from_u32(n: u32) -> Result<Self, VideoError> {
    match n {
      0 => Ok(Self::Rotation0),
      1 => Ok(Self::Rotation90),
      2 => Ok(Self::Rotation180),
      3 => Ok(Self::Rotation270),
      _ => Err(VideoError::InvalidRotation { given: i64::from(n) }),
    }
  }

  /// Clockwise degrees (0, 90, 180, 270).
  pub fn degrees(self) -> u32 {
    self as u32 * 90
  }
}
