//! Copies a decoder's strided I420 planes into a tightly packed `VideoFrame`.

use lkrtc_video::{VideoBufferType, VideoFrame};

/// One source plane: its bytes (at least `(rows - 1) * stride + row width`) and its stride.
pub(crate) struct SrcPlane<'a> {
  pub data: &'a [u8],
  pub stride: usize,
}

/// A `width` x `height` I420 frame with rows copied from `planes` (Y, U, V). The error says which
/// plane was too short for the claimed size.
pub(crate) fn copy_to_frame(width: u32, height: u32, planes: [SrcPlane<'_>; 3]) -> Result<VideoFrame, String> {
  let mut frame = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).map_err(|e| e.to_string())?;
  let layout = frame.layout();
  for (i, (src, dst)) in planes.iter().zip(layout.planes()).enumerate() {
    let row = dst.stride;
    let needed = src
      .stride
      .saturating_mul(dst.rows.saturating_sub(1))
      .saturating_add(row);
    if src.stride < row || src.data.len() < needed {
      return Err(format!(
        "plane {i} too small: {} bytes with stride {} for {}x{}",
        src.data.len(),
        src.stride,
        row,
        dst.rows
      ));
    }
    let out = &mut frame.data_mut()[dst.offset..dst.offset + dst.len];
    for (y, out_row) in out.chunks_exact_mut(row).enumerate() {
      let start = y * src.stride;
      out_row.copy_from_slice(&src.data[start..start + row]);
    }
  }
  Ok(frame)
}
