//! Property tests: arbitrary dimensions, formats and buffer sizes never panic; every accepted
//! frame converts to every format with the exact output size; errors carry their codes.

use lkrtc_video::{convert, convert_into, VideoBufferType, VideoFrame};
use proptest::prelude::*;

fn any_type() -> impl Strategy<Value = VideoBufferType> {
  proptest::sample::select(VideoBufferType::ALL.to_vec())
}

proptest! {
  #![proptest_config(ProptestConfig::with_cases(256))]

  #[test]
  fn construction_accepts_exactly_the_layout_size(
    width in 0u32..70, height in 0u32..70, ty in any_type(), delta in -3i64..3,
  ) {
    let expected = if width == 0 || height == 0 { 0 } else { ty.layout(width, height).size };
    let len = (expected as i64 + delta).max(0) as usize;
    match VideoFrame::new(width, height, ty, vec![7u8; len]) {
      Ok(frame) => {
        prop_assert!(width > 0 && height > 0);
        prop_assert_eq!(len, expected);
        let planes = frame.layout().planes().len();
        for i in 0..planes {
          prop_assert!(frame.plane(i).is_some());
        }
        prop_assert!(frame.plane(planes).is_none());
      }
      Err(e) => {
        let code = e.code();
        if width == 0 || height == 0 {
          prop_assert_eq!(code, "ERR_INVALID_DIMENSIONS");
        } else {
          prop_assert_eq!(code, "ERR_INVALID_FRAME_SIZE");
          prop_assert_ne!(len, expected);
        }
      }
    }
  }

  #[test]
  fn every_conversion_of_random_bytes_has_the_target_size(
    width in 1u32..40, height in 1u32..40, from in any_type(), to in any_type(),
    seed in any::<u8>(), flip in any::<bool>(),
  ) {
    let size = from.layout(width, height).size;
    let bytes: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    let src = VideoFrame::new(width, height, from, bytes).unwrap();
    let out = convert(&src, to, flip).unwrap();
    prop_assert_eq!((out.width(), out.height(), out.buffer_type()), (width, height, to));
    prop_assert_eq!(out.data().len(), to.layout(width, height).size);
  }

  #[test]
  fn convert_into_a_frame_of_other_dimensions_is_refused(
    width in 1u32..30, height in 1u32..30, dw in 1u32..3, from in any_type(), to in any_type(),
  ) {
    let src = VideoFrame::new_zeroed(width, height, from).unwrap();
    let mut dst = VideoFrame::new_zeroed(width + dw, height, to).unwrap();
    let err = convert_into(&src, &mut dst, false).unwrap_err();
    prop_assert_eq!(err.code(), "ERR_DIMENSION_MISMATCH");
  }
}
