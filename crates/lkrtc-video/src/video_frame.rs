//! A video frame: dimensions, a pixel format and the bytes, owned or borrowed.

use crate::{FrameLayout, VideoBufferType, VideoError};

/// Largest width or height accepted (16384, as libwebrtc's limit).
pub const MAX_DIMENSION: u32 = 16384;

/// A frame whose bytes live in `D` (a `Vec<u8>` when owned, a `&[u8]` or `&mut [u8]` when borrowed,
/// e.g. from a JavaScript buffer). Planes are tightly packed in the order of [`VideoBufferType::layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame<D = Vec<u8>> {
  width: u32,
  height: u32,
  buffer_type: VideoBufferType,
  data: D,
}

/// Checks that `width` x `height` are positive and within [`MAX_DIMENSION`].
pub fn check_dimensions(width: i64, height: i64) -> Result<(u32, u32), VideoError> {
  let ok = |v: i64| v > 0 && v <= i64::from(MAX_DIMENSION);
  if ok(width) && ok(height) {
    Ok((width as u32, height as u32))
  } else {
    Err(VideoError::InvalidDimensions {
      width,
      height,
      max: MAX_DIMENSION,
    })
  }
}

impl<D: AsRef<[u8]>> VideoFrame<D> {
  /// A frame over `data`, which must hold exactly the bytes the format needs.
  pub fn new(width: u32, height: u32, buffer_type: VideoBufferType, data: D) -> Result<Self, VideoError> {
    check_dimensions(i64::from(width), i64::from(height))?;
    let expected = buffer_type.layout(width, height).size;
    let given = data.as_ref().len();
    if given != expected {
      return Err(VideoError::InvalidFrameSize {
        width,
        height,
        buffer_type,
        expected,
        given,
      });
    }
    Ok(Self {
      width,
      height,
      buffer_type,
      data,
    })
  }

  /// Width in pixels.
  pub fn width(&self) -> u32 {
    self.width
  }

  /// Height in pixels.
  pub fn height(&self) -> u32 {
    self.height
  }

  /// The pixel format.
  pub fn buffer_type(&self) -> VideoBufferType {
    self.buffer_type
  }

  /// All the bytes.
  pub fn data(&self) -> &[u8] {
    self.data.as_ref()
  }

  /// Gives the storage back.
  pub fn into_data(self) -> D {
    self.data
  }

  /// Where each plane lies in `data`.
  pub fn layout(&self) -> FrameLayout {
    self.buffer_type.layout(self.width, self.height)
  }

  /// Plane `index` (Y, U, V, A / Y, UV / the packed plane), or `None` past the last one.
  pub fn plane(&self, index: usize) -> Option<&[u8]> {
    let p = *self.layout().planes().get(index)?;
    Some(&self.data.as_ref()[p.offset..p.offset + p.len])
  }

  /// A borrowed view of this frame.
  pub fn as_ref(&self) -> VideoFrame<&[u8]> {
    VideoFrame {
      width: self.width,
      height: self.height,
      buffer_type: self.buffer_type,
      data: self.data.as_ref(),
    }
  }
}

impl<D: AsRef<[u8]> + AsMut<[u8]>> VideoFrame<D> {
  /// Plane `index`, writable.
  pub fn plane_mut(&mut self, index: usize) -> Option<&mut [u8]> {
    let p = *self.layout().planes().get(index)?;
    Some(&mut self.data.as_mut()[p.offset..p.offset + p.len])
  }

  /// All the bytes, writable.
  pub fn data_mut(&mut self) -> &mut [u8] {
    self.data.as_mut()
  }
}

impl VideoFrame<Vec<u8>> {
  /// A zero-filled frame.
  pub fn new_zeroed(width: u32, height: u32, buffer_type: VideoBufferType) -> Result<Self, VideoError> {
    check_dimensions(i64::from(width), i64::from(height))?;
    let size = buffer_type.layout(width, height).size;
    Ok(Self {
      width,
      height,
      buffer_type,
      data: vec![0; size],
    })
  }
}
