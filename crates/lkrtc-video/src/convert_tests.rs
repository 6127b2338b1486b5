use super::*;

const ALL: [T; 11] = T::ALL;

/// A natural-looking RGBA picture: smooth gradients, a soft-edged disc and bar, opaque.
pub(crate) fn pattern(w: u32, h: u32) -> VideoFrame {
  // Edges ramp over about 1.5 pixels, as a camera or a renderer would smooth them.
  let soft = |d: f32| (0.5 - d * w.max(h) as f32 / 3.0).clamp(0.0, 1.0);
  let mut data = Vec::with_capacity((w * h * 4) as usize);
  for y in 0..h {
    for x in 0..w {
      let (fx, fy) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
      let mut rgb = [255.0 * fx, 255.0 * fy, 255.0 * (1.0 - fx) * (0.5 + 0.5 * fy)];
      let mut paint = |k: f32, c: [f32; 3]| (0..3).for_each(|i| rgb[i] += k * (c[i] - rgb[i]));
      paint(
        soft(((fx - 0.6).powi(2) + (fy - 0.4).powi(2)).sqrt() - 0.2),
        [230.0, 200.0, 40.0],
      );
      paint(
        soft((0.2 - fx).abs().max((0.75 - fy).abs()) - 0.12),
        [40.0, 90.0, 200.0],
      );
      data.extend(rgb.iter().map(|&c| c.round().clamp(0.0, 255.0) as u8));
      data.push(255);
    }
  }
  VideoFrame::new(w, h, T::RGBA, data).unwrap()
}

fn solid(rgba: [u8; 4], w: u32, h: u32) -> VideoFrame {
  VideoFrame::new(w, h, T::RGBA, rgba.repeat((w * h) as usize)).unwrap()
}

/// PSNR in dB over the R, G and B bytes of two RGBA frames.
fn psnr_rgb(a: &VideoFrame, b: &VideoFrame) -> f64 {
  let (mut sum, mut n) = (0f64, 0f64);
  for (pa, pb) in a.data().chunks(4).zip(b.data().chunks(4)) {
    for c in 0..3 {
      let d = f64::from(pa[c]) - f64::from(pb[c]);
      sum += d * d;
      n += 1.0;
    }
  }
  if sum == 0.0 {
    return f64::INFINITY;
  }
  10.0 * (255.0 * 255.0 / (sum / n)).log10()
}

/// `frame` with the rows of every plane in reverse order.
fn flipped(frame: &VideoFrame) -> VideoFrame {
  let mut out = frame.clone();
  for (i, p) in frame.layout().planes().iter().enumerate() {
    let src = frame.plane(i).unwrap();
    let dst = out.plane_mut(i).unwrap();
    for r in 0..p.rows {
      dst[r * p.stride..(r + 1) * p.stride].copy_from_slice(&src[(p.rows - 1 - r) * p.stride..(p.rows - r) * p.stride]);
    }
  }
  out
}

fn assert_near(given: &[u8], expected: &[u8], tolerance: u8, what: &str) {
  assert_eq!(given.len(), expected.len(), "{what}");
  for (g, e) in given.iter().zip(expected) {
    assert!(
      g.abs_diff(*e) <= tolerance,
      "{what}: got {given:?}, expected {expected:?} +-{tolerance}"
    );
  }
}

#[test]
fn every_pair_has_a_route() {
  for from in ALL {
    for to in ALL {
      assert!(plan(from, to).is_some(), "{from} -> {to}");
    }
  }
}

#[test]
fn rgba_to_i420_gives_bt601_limited_range_values() {
  // Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, Cb/Cr around 128 (ITU-R BT.601).
  let cases: [([u8; 4], [u8; 3]); 6] = [
    ([255, 0, 0, 255], [81, 90, 240]),
    ([0, 255, 0, 255], [145, 54, 34]),
    ([0, 0, 255, 255], [41, 240, 110]),
    ([255, 255, 255, 255], [235, 128, 128]),
    ([0, 0, 0, 255], [16, 128, 128]),
    ([128, 128, 128, 255], [126, 128, 128]),
  ];
  for (rgba, yuv) in cases {
    let i420 = convert(&solid(rgba, 4, 4), T::I420, false).unwrap();
    let got = [
      i420.plane(0).unwrap()[0],
      i420.plane(1).unwrap()[0],
      i420.plane(2).unwrap()[0],
    ];
    assert_near(&got, &yuv, 1, &format!("{rgba:?}"));
  }
}

#[test]
fn i420_to_rgba_inverts_bt601_limited_range() {
  for rgba in [
    [255, 0, 0, 255],
    [0, 255, 0, 255],
    [0, 0, 255, 255],
    [255, 255, 255, 255],
    [0, 0, 0, 255],
  ] {
    let back = convert(&convert(&solid(rgba, 4, 4), T::I420, false).unwrap(), T::RGBA, false).unwrap();
    // libyuv's fixed-point YUV -> RGB (6-bit coefficients) brings saturated blue back as 251.
    assert_near(&back.data()[..4], &rgba, 4, &format!("{rgba:?}"));
  }
}

#[test]
fn packed_formats_use_lkrtc_byte_order() {
  // R=10, G=20, B=30, A=40 in every packed format.
  let expected = [
    (T::RGBA, vec![10, 20, 30, 40]),
    (T::ABGR, vec![40, 30, 20, 10]),
    (T::ARGB, vec![40, 10, 20, 30]),
    (T::BGRA, vec![30, 20, 10, 40]),
    (T::RGB24, vec![10, 20, 30]),
  ];
  for (from, src) in &expected {
    let frame = VideoFrame::new(1, 1, *from, src.clone()).unwrap();
    for (to, want) in &expected {
      let got = convert(&frame, *to, false).unwrap();
      // RGB24 has no alpha: converting from it yields opaque pixels.
      let mut want = want.clone();
      if *from == T::RGB24 && *to != T::RGB24 {
        let a = byte_order(*to).unwrap().iter().position(|&c| c == 3).unwrap();
        want[a] = 255;
      }
      assert_eq!(got.data(), &want[..], "{from} -> {to}");
    }
  }
}

#[test]
fn every_packed_format_reads_red_as_red() {
  let red = solid([255, 0, 0, 255], 2, 2);
  for t in [T::RGBA, T::ABGR, T::ARGB, T::BGRA, T::RGB24] {
    let i420 = convert(&convert(&red, t, false).unwrap(), T::I420, false).unwrap();
    let got = [
      i420.plane(0).unwrap()[0],
      i420.plane(1).unwrap()[0],
      i420.plane(2).unwrap()[0],
    ];
    assert_near(&got, &[81, 90, 240], 1, &format!("{t}"));
  }
}

#[test]
fn every_pair_round_trips_above_35_db() {
  let mut failures = vec![];
  for (w, h) in [(160, 120), (161, 91)] {
    let rgba = pattern(w, h);
    for a in ALL {
      let src = convert(&rgba, a, false).unwrap();
      let reference = convert(&src, T::RGBA, false).unwrap();
      for b in ALL {
        let there = convert(&src, b, false).unwrap();
        let back = convert(&convert(&there, a, false).unwrap(), T::RGBA, false).unwrap();
        let db = psnr_rgb(&reference, &back);
        if db < 35.0 {
          failures.push(format!("{w}x{h} {a} -> {b} -> {a}: {db:.1} dB"));
        }
      }
    }
  }
  assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn lossless_pairs_round_trip_exactly() {
  let rgba = pattern(31, 9);
  let packed4 = [T::RGBA, T::ABGR, T::ARGB, T::BGRA];
  for a in packed4 {
    for b in packed4.iter().copied().chain([T::RGB24]) {
      let src = convert(&rgba, a, false).unwrap();
      let back = convert(&convert(&src, b, false).unwrap(), a, false).unwrap();
      assert_eq!(back, src, "{a} -> {b} -> {a}");
    }
  }
  // I422 and I444 are not here: libyuv filters chroma when it upsamples, so the way back differs.
  for b in [T::I420A, T::I010, T::NV12] {
    let src = convert(&rgba, T::I420, false).unwrap();
    let back = convert(&convert(&src, b, false).unwrap(), T::I420, false).unwrap();
    assert_eq!(back, src, "I420 -> {b} -> I420");
  }
}

#[test]
fn flip_y_flips_every_pair() {
  let rgba = pattern(16, 10);
  let mut failures = vec![];
  for a in ALL {
    let src = convert(&rgba, a, false).unwrap();
    for b in ALL {
      let upright = convert(&src, b, false).unwrap();
      let flip = convert(&src, b, true).unwrap();
      let expected = flipped(&upright);
      let worst = flip
        .data()
        .iter()
        .zip(expected.data())
        .map(|(x, y)| x.abs_diff(*y))
        .max();
      // Chroma upsampling (I420 -> I422/I444) rounds half up, so flipped output may differ by 1.
      if worst > Some(1) {
        failures.push(format!("{a} -> {b}: off by {worst:?}"));
      }
    }
  }
  assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn flip_y_puts_the_last_row_first_for_odd_sizes() {
  let rgba = pattern(7, 5);
  let flip = convert(&rgba, T::RGBA, true).unwrap();
  let row = 7 * 4;
  assert_eq!(&flip.data()[..row], &rgba.data()[4 * row..]);
  assert_eq!(&flip.data()[4 * row..], &rgba.data()[..row]);
}

#[test]
fn odd_sizes_convert_between_every_pair() {
  for (w, h) in [(1, 1), (3, 3), (5, 2), (2, 7)] {
    let rgba = pattern(w, h);
    for a in ALL {
      let src = convert(&rgba, a, false).unwrap();
      for b in ALL {
        for flip in [false, true] {
          let out = convert(&src, b, flip).unwrap();
          assert_eq!(out.data().len(), b.layout(w, h).size, "{w}x{h} {a} -> {b}");
        }
      }
    }
  }
}

#[test]
fn odd_size_chroma_covers_the_last_column_and_row() {
  // 3x3 red with a blue last column and row: the chroma sample for that edge must be blue-ish.
  let mut frame = solid([255, 0, 0, 255], 3, 3);
  for i in 0..9 {
    if i % 3 == 2 || i / 3 == 2 {
      frame.data_mut()[i * 4..i * 4 + 4].copy_from_slice(&[0, 0, 255, 255]);
    }
  }
  let i420 = convert(&frame, T::I420, false).unwrap();
  assert_eq!(i420.plane(1).unwrap().len(), 4);
  assert_near(
    &[i420.plane(1).unwrap()[3], i420.plane(2).unwrap()[3]],
    &[240, 110],
    1,
    "bottom-right chroma",
  );
}

#[test]
fn i420a_keeps_the_source_alpha() {
  let mut rgba = pattern(6, 4);
  for (i, px) in rgba.data_mut().chunks_mut(4).enumerate() {
    px[3] = (i * 10) as u8;
  }
  for packed in [T::RGBA, T::ABGR, T::ARGB, T::BGRA] {
    let src = convert(&rgba, packed, false).unwrap();
    let i420a = convert(&src, T::I420A, false).unwrap();
    let alpha: Vec<u8> = (0..24).map(|i| (i * 10) as u8).collect();
    assert_eq!(i420a.plane(3).unwrap(), &alpha[..], "{packed} -> I420A");
    let back = convert(&i420a, packed, false).unwrap();
    let a = byte_order(packed).unwrap().iter().position(|&c| c == 3).unwrap();
    let back_alpha: Vec<u8> = back.data().chunks(4).map(|px| px[a]).collect();
    assert_eq!(back_alpha, alpha, "I420A -> {packed}");
  }
}

#[test]
fn i420a_made_from_opaque_formats_is_opaque() {
  let rgba = pattern(5, 3);
  for from in [T::RGB24, T::I420, T::I422, T::I444, T::I010, T::NV12] {
    let i420a = convert(&convert(&rgba, from, false).unwrap(), T::I420A, false).unwrap();
    assert!(i420a.plane(3).unwrap().iter().all(|&a| a == 255), "{from} -> I420A");
  }
}

#[test]
fn i010_holds_10_bit_samples() {
  let i420 = VideoFrame::new(2, 2, T::I420, vec![16, 100, 200, 235, 128, 64]).unwrap();
  let i010 = convert(&i420, T::I010, false).unwrap();
  let y: Vec<u16> = i010
    .plane(0)
    .unwrap()
    .chunks(2)
    .map(|b| u16::from_le_bytes([b[0], b[1]]))
    .collect();
  // libyuv widens v to v * 1023 / 255 (as (v * 257) >> 6), so 255 becomes 1023.
  assert_eq!(y, [64, 401, 803, 943]);
  let back = convert(&i010, T::I420, false).unwrap();
  assert_eq!(back, i420);
}

#[test]
fn i010_at_an_odd_address_converts_like_an_aligned_one() {
  let i010 = convert(&pattern(9, 5), T::I010, false).unwrap();
  let mut shifted = vec![0u8; i010.data().len() + 1];
  shifted[1..].copy_from_slice(i010.data());
  let unaligned = VideoFrame::new(9, 5, T::I010, &shifted[1..]).unwrap();
  for to in ALL {
    assert_eq!(
      convert(&unaligned, to, false).unwrap(),
      convert(&i010, to, false).unwrap(),
      "I010 -> {to}"
    );
  }
  let mut out = vec![0u8; i010.data().len() + 1];
  let mut dst = VideoFrame::new(9, 5, T::I010, &mut out[1..]).unwrap();
  convert_into(&convert(&pattern(9, 5), T::I420, false).unwrap(), &mut dst, false).unwrap();
  assert_eq!(dst.data(), i010.data());
}

#[test]
fn convert_into_writes_a_borrowed_destination() {
  let rgba = pattern(8, 6);
  let mut buf = vec![0u8; T::NV12.layout(8, 6).size];
  let mut dst = VideoFrame::new(8, 6, T::NV12, &mut buf[..]).unwrap();
  convert_into(&rgba, &mut dst, false).unwrap();
  assert_eq!(buf, convert(&rgba, T::NV12, false).unwrap().into_data());
}

#[test]
fn convert_into_rejects_a_destination_of_other_dimensions() {
  let mut dst = VideoFrame::new_zeroed(4, 4, T::I420).unwrap();
  let err = convert_into(&pattern(8, 6), &mut dst, false).unwrap_err();
  assert_eq!(err.code(), "ERR_DIMENSION_MISMATCH");
  assert!(
    err.to_string().contains("8x6") && err.to_string().contains("4x4"),
    "{err}"
  );
}

#[test]
fn shuffle_masks_move_each_channel() {
  assert_eq!(
    shuffle_mask(T::RGBA, T::RGBA).unwrap(),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
  );
  assert_eq!(&shuffle_mask(T::RGBA, T::BGRA).unwrap()[..4], &[2, 1, 0, 3]);
  assert_eq!(&shuffle_mask(T::ARGB, T::RGBA).unwrap()[..4], &[1, 2, 3, 0]);
  assert!(shuffle_mask(T::RGB24, T::RGBA).is_none());
}

/// Prints ms per 1080p conversion, with and without allocating the output
/// (`cargo test -p lkrtc-video --release -- --ignored --nocapture timing`).
#[test]
#[ignore]
fn timing() {
  let rgba = pattern(1920, 1080);
  let i420 = convert(&rgba, T::I420, false).unwrap();
  let nv12 = convert(&rgba, T::NV12, false).unwrap();
  for (name, src, to) in [
    ("RGBA->I420", &rgba, T::I420),
    ("I420->RGBA", &i420, T::RGBA),
    ("NV12->I420", &nv12, T::I420),
  ] {
    let n = 50;
    let t = std::time::Instant::now();
    for _ in 0..n {
      std::hint::black_box(convert(src, to, false).unwrap());
    }
    let fresh = t.elapsed().as_secs_f64() * 1e3 / n as f64;
    let mut dst = VideoFrame::new_zeroed(1920, 1080, to).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..n {
      convert_into(src, &mut dst, false).unwrap();
    }
    let reused = t.elapsed().as_secs_f64() * 1e3 / n as f64;
    println!("{name}: {fresh:.3} ms (new buffer), {reused:.3} ms (reused buffer)");
  }
}

#[test]
fn every_pair_writes_every_destination_byte() {
  // The binding converts into uninitialized memory: no byte may be left as it was.
  let rgba = pattern(5, 3);
  for a in ALL {
    let src = convert(&rgba, a, false).unwrap();
    for b in ALL {
      for flip in [false, true] {
        let outputs: Vec<Vec<u8>> = [0x00u8, 0xff]
          .iter()
          .map(|&fill| {
            let mut dst = VideoFrame::new(5, 3, b, vec![fill; b.layout(5, 3).size]).unwrap();
            convert_into(&src, &mut dst, flip).unwrap();
            dst.into_data()
          })
          .collect();
        assert_eq!(outputs[0], outputs[1], "{a} -> {b} (flip {flip})");
      }
    }
  }
}
