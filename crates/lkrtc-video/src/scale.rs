//! Resizing I420 pictures (libyuv's box filter), for an encoder that sends a smaller picture
//! than its source gives it when the link cannot carry the full size.

use yuv_sys as yuv;

use crate::{VideoBufferType, VideoError, VideoFrame};

/// `src` (I420) resized to `width` x `height` into `dst`, which must be I420 of that size.
pub fn scale_i420_into<S, D>(src: &VideoFrame<S>, dst: &mut VideoFrame<D>) -> Result<(), VideoError>
where
  S: AsRef<[u8]>,
  D: AsRef<[u8]> + AsMut<[u8]>,
{
  for f in [src.buffer_type(), dst.buffer_type()] {
    if f != VideoBufferType::I420 {
      return Err(VideoError::UnsupportedConversion {
        from: src.buffer_type(),
        to: dst.buffer_type(),
      });
    }
  }
  let (sl, dl) = (src.layout(), dst.layout());
  let (sp, dp) = (sl.planes(), dl.planes());
  let (sw, sh) = (src.width() as i32, src.height() as i32);
  let (dw, dh) = (dst.width() as i32, dst.height() as i32);
  let s = src.data().as_ptr();
  let d = dst.data_mut().as_mut_ptr();
  // SAFETY: both layouts describe their buffers (checked when the frames were made), and the
  // planes do not overlap between the two frames.
  let code = unsafe {
    yuv::rs_I420Scale(
      s.add(sp[0].offset),
      sp[0].stride as i32,
      s.add(sp[1].offset),
      sp[1].stride as i32,
      s.add(sp[2].offset),
      sp[2].stride as i32,
      sw,
      sh,
      d.add(dp[0].offset),
      dp[0].stride as i32,
      d.add(dp[1].offset),
      dp[1].stride as i32,
      d.add(dp[2].offset),
      dp[2].stride as i32,
      dw,
      dh,
      yuv::FilterMode_kFilterBox,
    )
  };
  if code != 0 {
    return Err(VideoError::ConversionFailed {
      from: VideoBufferType::I420,
      to: VideoBufferType::I420,
      code,
    });
  }
  Ok(())
}

/// `src` (I420) resized to a new `width` x `height` I420 frame.
pub fn scale_i420<S: AsRef<[u8]>>(src: &VideoFrame<S>, width: u32, height: u32) -> Result<VideoFrame, VideoError> {
  let mut dst = VideoFrame::new_zeroed(width, height, VideoBufferType::I420)?;
  scale_i420_into(src, &mut dst)?;
  Ok(dst)
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A picture whose left half is dark and right half bright, in luma and both chroma planes.
  fn halves(width: u32, height: u32) -> VideoFrame {
    let mut f = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).unwrap();
    let layout = f.layout();
    for (i, p) in layout.planes().iter().enumerate() {
      let w = if i == 0 {
        width as usize
      } else {
        width.div_ceil(2) as usize
      };
      let plane = f.plane_mut(i).unwrap();
      for row in 0..p.rows {
        for x in 0..w {
          plane[row * p.stride + x] = if x < w / 2 { 40 } else { 200 };
        }
      }
    }
    f
  }

  #[test]
  fn halving_keeps_the_picture() {
    let src = halves(64, 32);
    let out = scale_i420(&src, 32, 16).unwrap();
    assert_eq!((out.width(), out.height()), (32, 16));
    let y = out.plane(0).unwrap();
    assert_eq!(y[5 * 32 + 4], 40);
    assert_eq!(y[5 * 32 + 28], 200);
    let u = out.plane(1).unwrap();
    assert_eq!(u[3 * 16 + 2], 40);
    assert_eq!(u[3 * 16 + 14], 200);
  }

  #[test]
  fn odd_sizes_scale() {
    let src = halves(641, 361);
    let out = scale_i420(&src, 481, 271).unwrap();
    assert_eq!(out.data().len(), 481 * 271 + 2 * 241 * 136);
    assert_eq!(out.plane(0).unwrap()[100 * 481 + 470], 200);
  }

  #[test]
  fn only_i420_is_scaled() {
    let src = VideoFrame::new_zeroed(8, 8, VideoBufferType::RGBA).unwrap();
    let err = scale_i420(&src, 4, 4).unwrap_err();
    assert_eq!(err.code(), "ERR_UNSUPPORTED_CONVERSION");
  }
}
