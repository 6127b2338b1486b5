//! Round trips on a moving test pattern (gradients, shapes, fine detail), one behaviour per test,
//! each run for both codecs.

use crate::*;

/// Frame `n` of a moving pattern: a diagonal gradient scrolling right, a bright square moving
/// across, a disc bouncing, a fine striped band scrolling, and coloured chroma gradients.
fn pattern(width: u32, height: u32, n: u32) -> VideoFrame {
  let mut frame = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).expect("frame");
  let (w, h) = (width as i64, height as i64);
  let t = i64::from(n);
  let layout = frame.layout();
  let [py, pu, pv] = [layout.planes()[0], layout.planes()[1], layout.planes()[2]];
  let data = frame.data_mut();
  let (sq_x, sq_y, sq) = ((t * 7) % w, h / 4, (w / 6).max(2));
  let (disc_x, disc_y, r) = (
    w / 2 + (t * 5 % (w / 2)) - w / 4,
    h / 2 + ((t * 3) % (h / 3)) - h / 6,
    (h / 8).max(2),
  );
  for y in 0..h {
    for x in 0..w {
      let mut v = ((x + t * 4) * 160 / w.max(1) + y * 60 / h.max(1)) % 220 + 16;
      if x >= sq_x && x < sq_x + sq && y >= sq_y && y < sq_y + sq {
        v = 235;
      }
      if (x - disc_x).pow(2) + (y - disc_y).pow(2) <= r * r {
        v = 40;
      }
      if y > h * 3 / 4 && y < h * 3 / 4 + h / 10 {
        v = if ((x + t * 3) / 3) % 2 == 0 { 200 } else { 60 };
      }
      data[py.offset + (y as usize) * py.stride + x as usize] = v as u8;
    }
  }
  for y in 0..pu.rows as i64 {
    for x in 0..pu.stride as i64 {
      let i = (y as usize) * pu.stride + x as usize;
      data[pu.offset + i] = (64 + (x * 2 + t) % 128) as u8;
      data[pv.offset + i] = (64 + (y * 2 + t * 2) % 128) as u8;
    }
  }
  frame
}

fn solid(width: u32, height: u32, yuv: [u8; 3]) -> VideoFrame {
  let mut frame = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).expect("frame");
  for (i, value) in yuv.iter().enumerate() {
    frame.plane_mut(i).expect("plane").fill(*value);
  }
  frame
}

/// PSNR over all three planes.
fn psnr(a: &VideoFrame, b: &VideoFrame) -> f64 {
  assert_eq!((a.width(), a.height()), (b.width(), b.height()));
  let se: f64 = a
    .data()
    .iter()
    .zip(b.data())
    .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
    .sum();
  let mse = se / a.data().len() as f64;
  if mse == 0.0 {
    return 99.0;
  }
  10.0 * (255.0 * 255.0 / mse).log10()
}

fn mean(plane: &[u8]) -> f64 {
  plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64
}

fn config(width: u32, height: u32, bitrate_bps: u32) -> EncoderConfig {
  EncoderConfig {
    screen_content: false,
    adaptive_speed: false,
    width,
    height,
    bitrate_bps,
    max_framerate: 30.0,
  }
}

const FRAME_US: i64 = 33_333;

fn encode(enc: &mut dyn VideoEncoder, frame: &VideoFrame, n: i64, force: bool) -> EncodedFrame {
  let out = enc.encode(&frame.as_ref(), n * FRAME_US, force).expect("encode");
  out.unwrap_or_else(|| panic!("{}: frame {n} skipped", enc.codec()))
}

const CODECS: [VideoCodec; 3] = [VideoCodec::Vp8, VideoCodec::H264, VideoCodec::Vp9];

#[test]
fn round_trip_psnr_is_at_least_30db_at_640x480() {
  for codec in CODECS {
    let mut enc = new_encoder(codec, &config(640, 480, 1_500_000)).unwrap();
    let mut dec = new_decoder(codec).unwrap();
    let mut worst = f64::MAX;
    for n in 0..30 {
      let src = pattern(640, 480, n);
      let out = encode(enc.as_mut(), &src, i64::from(n), false);
      let decoded = dec
        .decode(&out.data)
        .unwrap()
        .expect("a decoded frame per encoded frame");
      assert_eq!((decoded.width(), decoded.height()), (640, 480));
      assert_eq!(decoded.buffer_type(), VideoBufferType::I420);
      worst = worst.min(psnr(&src, &decoded));
    }
    assert!(worst >= 30.0, "{codec}: worst PSNR {worst:.1} dB");
  }
}

#[test]
fn first_and_forced_frames_are_keyframes_and_others_are_not() {
  for codec in CODECS {
    let mut enc = new_encoder(codec, &config(320, 240, 500_000)).unwrap();
    for n in 0..40 {
      let forced = n == 15 || n == 30;
      let out = encode(enc.as_mut(), &pattern(320, 240, n as u32), n, forced);
      assert_eq!(out.keyframe, n == 0 || forced, "{codec}: frame {n}");
      assert_eq!(out.timestamp_us, n * FRAME_US);
    }
  }
}

#[test]
fn set_bitrate_changes_the_output_rate() {
  for codec in CODECS {
    let mut enc = new_encoder(codec, &config(640, 480, 2_000_000)).unwrap();
    // Bytes per input frame; a frame the rate control skipped (H.264) counts as 0 bytes.
    let mean_size = |enc: &mut dyn VideoEncoder, from: i64| {
      let sizes: Vec<usize> = (from..from + 40)
        .map(|n| {
          enc
            .encode(&pattern(640, 480, n as u32).as_ref(), n * FRAME_US, false)
            .expect("encode")
        })
        .map(|out| out.map_or(0, |f| f.data.len()))
        // Skip the first frames after a change: the rate control settles.
        .skip(10)
        .collect();
      sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
    };
    let high = mean_size(enc.as_mut(), 0);
    enc.set_bitrate(300_000);
    let low = mean_size(enc.as_mut(), 40);
    // 2 Mbps vs 300 kbps at 30 fps: ~8.3 kB vs ~1.25 kB per frame.
    assert!(
      high > low * 2.5,
      "{codec}: mean frame {high:.0} B at 2 Mbps vs {low:.0} B at 300 kbps"
    );
    // The pattern does not fit 1.25 kB at VP8's coarsest quantizer: one-threaded VP8 settles
    // near 2.6 kB here (two threads ~2.1 kB). The bound catches a rate that did not drop.
    assert!(low < 3000.0, "{codec}: mean frame {low:.0} B at 300 kbps");
    eprintln!("{codec}: mean frame {high:.0} B at 2 Mbps vs {low:.0} B at 300 kbps");
  }
}

#[test]
fn solid_colours_survive() {
  for codec in CODECS {
    for yuv in [
      [16u8, 128, 128],
      [235, 128, 128],
      [81, 90, 240],
      [145, 54, 34],
      [41, 240, 110],
    ] {
      let mut enc = new_encoder(codec, &config(320, 240, 800_000)).unwrap();
      let mut dec = new_decoder(codec).unwrap();
      let src = solid(320, 240, yuv);
      let mut last = None;
      for n in 0..5 {
        let out = encode(enc.as_mut(), &src, n, false);
        last = dec.decode(&out.data).unwrap().or(last);
      }
      let got = last.expect("decoded");
      for (i, want) in yuv.iter().enumerate() {
        let m = mean(got.plane(i).unwrap());
        assert!(
          (m - f64::from(*want)).abs() <= 2.0,
          "{codec}: colour {yuv:?} plane {i}: mean {m:.1}"
        );
      }
    }
  }
}

#[test]
fn garbage_to_the_decoder_is_an_error() {
  let mut seed = 0x1234_5678u32;
  let mut junk = |len: usize| -> Vec<u8> {
    (0..len)
      .map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as u8
      })
      .collect()
  };
  for codec in CODECS {
    let mut dec = new_decoder(codec).unwrap();
    assert_eq!(dec.decode(&[]).unwrap_err().code(), "ERR_DECODE", "{codec}: empty");
    for len in [1, 3, 10, 100, 5000] {
      let data = junk(len);
      assert_eq!(
        dec.decode(&data).unwrap_err().code(),
        "ERR_DECODE",
        "{codec}: {len} random bytes"
      );
    }
    // Random bytes behind a start code too (H.264 parses NAL units).
    let mut data = vec![0, 0, 0, 1];
    data.extend(junk(2000));
    assert!(dec.decode(&data).is_err(), "{codec}: start code + random bytes");
  }
}

#[test]
fn decoder_keeps_working_after_garbage() {
  for codec in CODECS {
    let mut enc = new_encoder(codec, &config(320, 240, 500_000)).unwrap();
    let mut dec = new_decoder(codec).unwrap();
    let _ = dec.decode(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 1, 0x65, 1, 2, 3]);
    let out = encode(enc.as_mut(), &pattern(320, 240, 0), 0, false);
    let frame = dec.decode(&out.data).unwrap().expect("decoded keyframe");
    assert_eq!((frame.width(), frame.height()), (320, 240), "{codec}");
  }
}

#[test]
fn decoder_follows_a_resolution_change() {
  for codec in CODECS {
    let mut dec = new_decoder(codec).unwrap();
    for (w, h) in [(320u32, 240u32), (640, 360), (160, 120)] {
      let mut enc = new_encoder(codec, &config(w, h, 600_000)).unwrap();
      for n in 0..3 {
        let src = pattern(w, h, n);
        let out = encode(enc.as_mut(), &src, i64::from(n), false);
        let got = dec.decode(&out.data).unwrap().expect("decoded");
        assert_eq!((got.width(), got.height()), (w, h), "{codec}");
        assert_eq!(got.data().len(), VideoBufferType::I420.layout(w, h).size);
        assert!(psnr(&src, &got) > 25.0, "{codec} {w}x{h}");
      }
    }
  }
}

#[test]
fn wrong_frame_size_or_type_to_the_encoder_is_an_error() {
  for codec in CODECS {
    let mut enc = new_encoder(codec, &config(320, 240, 500_000)).unwrap();
    let small = pattern(160, 120, 0);
    let err = enc.encode(&small.as_ref(), 0, false).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_FRAME", "{codec}");
    let rgba = VideoFrame::new_zeroed(320, 240, VideoBufferType::RGBA).unwrap();
    assert_eq!(
      enc.encode(&rgba.as_ref(), 0, false).unwrap_err().code(),
      "ERR_INVALID_FRAME",
      "{codec}"
    );
    // The encoder is still usable, and its first real frame is still a keyframe.
    assert!(
      encode(enc.as_mut(), &pattern(320, 240, 0), 0, false).keyframe,
      "{codec}"
    );
  }
}

#[test]
fn vp8_and_vp9_round_trip_odd_sizes() {
  for codec in [VideoCodec::Vp8, VideoCodec::Vp9] {
    for (w, h) in [(321, 241), (641, 359)] {
      let mut enc = new_encoder(codec, &config(w, h, 1_200_000)).unwrap();
      let mut dec = new_decoder(codec).unwrap();
      for n in 0..5 {
        let src = pattern(w, h, n);
        let out = encode(enc.as_mut(), &src, i64::from(n), false);
        let got = dec.decode(&out.data).unwrap().expect("decoded");
        assert_eq!((got.width(), got.height()), (w, h), "{codec}");
        let score = psnr(&src, &got);
        assert!(score >= 30.0, "{codec} {w}x{h}: PSNR {score:.1} dB");
      }
    }
  }
}

#[test]
fn vp9_decoder_follows_a_size_change_on_a_delta_frame() {
  // A server switching spatial layers hands the decoder a smaller picture that is not a
  // keyframe: here, frames of the same stream resized without a keyframe (libvpx scales its
  // references; VP9 allows it, VP8 does not).
  let mut enc = vp9::new_encoder(&config(640, 360, 1_000_000)).unwrap();
  let mut dec = new_decoder(VideoCodec::Vp9).unwrap();
  for n in 0..3 {
    let out = encode(&mut enc, &pattern(640, 360, n), i64::from(n), false);
    dec.decode(&out.data).unwrap().expect("decoded");
  }
  enc.resize_without_keyframe(320, 180).unwrap();
  for n in 3..8 {
    let src = pattern(320, 180, n);
    let out = encode(&mut enc, &src, i64::from(n), false);
    assert!(!out.keyframe, "frame {n} must be a delta frame");
    let got = dec.decode(&out.data).unwrap().expect("decoded");
    assert_eq!((got.width(), got.height()), (320, 180));
    let score = psnr(&src, &got);
    assert!(score >= 28.0, "frame {n}: PSNR {score:.1} dB");
  }
}

/// The top-left `width` x `height` of `frame`.
fn crop(frame: &VideoFrame, width: u32, height: u32) -> VideoFrame {
  let mut out = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).expect("frame");
  let (src, dst) = (frame.layout(), out.layout());
  for i in 0..3 {
    let (s, d) = (src.planes()[i], dst.planes()[i]);
    for row in 0..d.rows {
      let from = &frame.data()[s.offset + row * s.stride..][..d.stride.min(s.stride)];
      out.data_mut()[d.offset + row * d.stride..][..from.len()].copy_from_slice(from);
    }
  }
  out
}

/// Four solid quadrants (Y, U, V each), the right and bottom ones starting at the odd middle.
fn quadrants(width: u32, height: u32) -> (VideoFrame, [[u8; 3]; 4]) {
  const COLOURS: [[u8; 3]; 4] = [[81, 90, 240], [145, 54, 34], [41, 240, 110], [210, 16, 146]];
  let mut frame = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).expect("frame");
  let layout = frame.layout();
  for (i, p) in layout.planes().iter().enumerate().take(3) {
    let (cols, rows) = if i == 0 {
      (width as usize, height as usize)
    } else {
      (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
    };
    for y in 0..rows {
      for x in 0..cols {
        let q = usize::from(x >= cols / 2) + 2 * usize::from(y >= rows / 2);
        frame.data_mut()[p.offset + y * p.stride + x] = COLOURS[q][i];
      }
    }
  }
  (frame, COLOURS)
}

/// Mean of plane `i` of `frame` over the middle half of quadrant `q` (away from the edges).
fn quadrant_mean(frame: &VideoFrame, i: usize, q: usize) -> f64 {
  let layout = frame.layout();
  let p = layout.planes()[i];
  let (cols, rows) = if i == 0 {
    (frame.width() as usize, frame.height() as usize)
  } else {
    (frame.width().div_ceil(2) as usize, frame.height().div_ceil(2) as usize)
  };
  let (x0, y0) = ((q % 2) * cols / 2, (q / 2) * rows / 2);
  let (qw, qh) = (cols / 2, rows / 2);
  let mut values = Vec::new();
  for y in y0 + qh / 4..y0 + qh * 3 / 4 {
    for x in x0 + qw / 4..x0 + qw * 3 / 4 {
      values.push(frame.data()[p.offset + y * p.stride + x]);
    }
  }
  mean(&values)
}

const ODD_SIZES: [(u32, u32); 5] = [(641, 359), (321, 241), (640, 359), (641, 360), (99, 75)];

#[test]
fn h264_sends_an_odd_size_without_its_last_column_or_row() {
  for (w, h) in ODD_SIZES {
    let mut enc = new_encoder(VideoCodec::H264, &config(w, h, 1_500_000)).unwrap();
    let mut dec = new_decoder(VideoCodec::H264).unwrap();
    let (cw, ch) = (w & !1, h & !1);
    for n in 0..5 {
      let src = pattern(w, h, n);
      let out = encode(enc.as_mut(), &src, i64::from(n), false);
      let got = dec.decode(&out.data).unwrap().expect("decoded");
      assert_eq!((got.width(), got.height()), (cw, ch), "{w}x{h}");
      // Against the source's top-left corner: a shifted or sheared picture scores far lower.
      let score = psnr(&crop(&src, cw, ch), &got);
      assert!(score >= 30.0, "{w}x{h} frame {n}: PSNR {score:.1} dB");
    }
  }
}

#[test]
fn h264_keeps_the_colours_of_an_odd_size_in_place() {
  for (w, h) in ODD_SIZES {
    let mut enc = new_encoder(VideoCodec::H264, &config(w, h, 1_500_000)).unwrap();
    let mut dec = new_decoder(VideoCodec::H264).unwrap();
    let (src, colours) = quadrants(w, h);
    let mut last = None;
    for n in 0..5 {
      let out = encode(enc.as_mut(), &src, n, false);
      last = dec.decode(&out.data).unwrap().or(last);
    }
    let got = last.expect("decoded");
    for (q, colour) in colours.iter().enumerate() {
      for (i, want) in colour.iter().enumerate() {
        let m = quadrant_mean(&got, i, q);
        assert!(
          (m - f64::from(*want)).abs() <= 3.0,
          "{w}x{h} quadrant {q} plane {i}: mean {m:.1}, sent {want}"
        );
      }
    }
  }
}

#[test]
fn h264_rejects_a_size_with_nothing_left_to_code() {
  for (w, h) in [(1, 1), (1, 240), (320, 1)] {
    let err = new_encoder(VideoCodec::H264, &config(w, h, 500_000))
      .err()
      .expect("rejected");
    assert_eq!(err.code(), "ERR_INVALID_CONFIG");
    assert!(err.to_string().contains("at least 2x2"), "{err}");
  }
}

/// NAL unit types in an Annex-B stream, in order.
fn nal_types(data: &[u8]) -> Vec<u8> {
  let mut types = Vec::new();
  let mut i = 0;
  while i + 3 < data.len() {
    if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
      types.push(data[i + 3] & 0x1f);
      i += 3;
    } else {
      i += 1;
    }
  }
  types
}

#[test]
fn h264_is_annex_b_with_sps_pps_before_every_idr() {
  let mut enc = new_encoder(VideoCodec::H264, &config(640, 480, 1_000_000)).unwrap();
  let mut keyframes = 0;
  for n in 0..20 {
    let forced = n == 0 || n == 10;
    // Rate control may skip a frame (encode gives None); never a requested keyframe.
    let Some(out) = enc
      .encode(&pattern(640, 480, n as u32).as_ref(), n * FRAME_US, forced)
      .expect("encode")
    else {
      assert!(!forced, "frame {n}: a requested keyframe was skipped");
      continue;
    };
    keyframes += usize::from(out.keyframe);
    assert!(!forced || out.keyframe, "frame {n} was requested as a keyframe");
    assert!(
      out.data.starts_with(&[0, 0, 0, 1]),
      "frame {n} starts with a start code"
    );
    let types = nal_types(&out.data);
    if out.keyframe {
      assert_eq!(&types[..2], &[7, 8], "frame {n}: SPS, PPS first: {types:?}");
      assert!(types[2..].iter().all(|&t| t == 5), "frame {n}: IDR slices: {types:?}");
    } else {
      assert!(
        types.iter().all(|&t| t == 1),
        "frame {n}: non-IDR slices only: {types:?}"
      );
    }
  }
  assert_eq!(keyframes, 2, "the first and the requested frame only");
}

#[test]
fn h264_sps_is_constrained_baseline() {
  let mut enc = new_encoder(VideoCodec::H264, &config(640, 480, 1_000_000)).unwrap();
  let out = encode(enc.as_mut(), &pattern(640, 480, 0), 0, false);
  let sps = out.data.windows(4).position(|w| w == [0, 0, 1, 0x67]).expect("SPS") + 4;
  // profile_idc 66 (Baseline) with constraint_set1 (Constrained Baseline), as 42e0xx / 42c0xx.
  assert_eq!(out.data[sps], 0x42);
  assert_ne!(
    out.data[sps + 1] & 0x40,
    0,
    "constraint_set1_flag: {:#04x}",
    out.data[sps + 1]
  );
}

#[test]
fn invalid_configs_are_rejected() {
  for codec in CODECS {
    for bad in [
      config(0, 240, 500_000),
      config(320, 240, 0),
      EncoderConfig {
        max_framerate: f64::NAN,
        ..config(320, 240, 500_000)
      },
    ] {
      assert_eq!(
        new_encoder(codec, &bad).err().expect("rejected").code(),
        "ERR_INVALID_CONFIG",
        "{codec} {bad:?}"
      );
    }
  }
}

/// The frames of an IVF file (32-byte file header, then a 12-byte header before each frame).
fn ivf_frames(file: &[u8]) -> Vec<&[u8]> {
  let mut frames = Vec::new();
  let mut at = usize::from(u16::from_le_bytes([file[6], file[7]]));
  while at + 12 <= file.len() {
    let len = u32::from_le_bytes([file[at], file[at + 1], file[at + 2], file[at + 3]]) as usize;
    at += 12;
    frames.push(&file[at..at + len]);
    at += len;
  }
  frames
}

#[test]
fn av1_decodes_a_stream_libaom_made() {
  // Made with libaom's aomenc 3.6 (--rt) from four frames of one colour, 64x48, Y 81 U 90 V 240.
  let file = include_bytes!("testdata/av1-64x48-solid.ivf");
  let frames = ivf_frames(file);
  assert_eq!(frames.len(), 4);
  let mut dec = new_decoder(VideoCodec::Av1).unwrap();
  assert_eq!(dec.codec(), VideoCodec::Av1);
  for (n, frame) in frames.iter().enumerate() {
    let got = dec
      .decode(frame)
      .unwrap()
      .unwrap_or_else(|| panic!("frame {n}: no picture"));
    assert_eq!((got.width(), got.height()), (64, 48));
    assert_eq!(got.buffer_type(), VideoBufferType::I420);
    for (i, want) in [81.0, 90.0, 240.0].iter().enumerate() {
      let m = mean(got.plane(i).unwrap());
      assert!((m - want).abs() <= 2.0, "frame {n} plane {i}: mean {m:.1}, sent {want}");
    }
  }
}

#[test]
fn av1_garbage_is_an_error_and_the_decoder_recovers() {
  let frames = ivf_frames(include_bytes!("testdata/av1-64x48-solid.ivf"));
  let mut dec = new_decoder(VideoCodec::Av1).unwrap();
  assert_eq!(dec.decode(&[]).unwrap_err().code(), "ERR_DECODE");
  let junk: Vec<u8> = (0..500u32)
    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
    .collect();
  assert_eq!(dec.decode(&junk).unwrap_err().code(), "ERR_DECODE");
  let got = dec
    .decode(frames[0])
    .unwrap()
    .expect("the keyframe decodes after garbage");
  assert_eq!((got.width(), got.height()), (64, 48));
}

#[test]
fn av1_round_trips_through_libaom_with_keyframes_on_request() {
  let mut enc = new_encoder(VideoCodec::Av1, &config(320, 240, 500_000)).unwrap();
  let mut dec = new_decoder(VideoCodec::Av1).unwrap();
  let mut worst = f64::MAX;
  for n in 0..30 {
    let forced = n == 17;
    let src = pattern(320, 240, n as u32);
    let out = encode(enc.as_mut(), &src, n, forced);
    assert_eq!(out.keyframe, n == 0 || forced, "frame {n}");
    let decoded = dec.decode(&out.data).unwrap().expect("a picture per frame");
    assert_eq!((decoded.width(), decoded.height()), (320, 240));
    worst = worst.min(psnr(&src, &decoded));
  }
  assert!(worst >= 30.0, "worst PSNR {worst:.1} dB");
}

#[test]
fn av1_keeps_an_odd_size() {
  let mut enc = new_encoder(VideoCodec::Av1, &config(321, 241, 500_000)).unwrap();
  let mut dec = new_decoder(VideoCodec::Av1).unwrap();
  let src = pattern(321, 241, 3);
  let out = encode(enc.as_mut(), &src, 0, false);
  let decoded = dec.decode(&out.data).unwrap().unwrap();
  assert_eq!((decoded.width(), decoded.height()), (321, 241));
  assert!(psnr(&src, &decoded) >= 30.0);
}
/// A page of "text": black strokes one and two pixels wide on white, in lines of glyph-sized
/// cells, scrolled down by `scroll` rows (a document being read).
fn text_page(width: u32, height: u32, scroll: u32) -> VideoFrame {
  let mut f = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).unwrap();
  let (w, h) = (width as usize, height as usize);
  let data = f.data_mut();
  data[w * h..].fill(128);
  for y in 0..h {
    let py = y + scroll as usize;
    for x in 0..w {
      let (line, row) = (py / 14, py % 14);
      let (cell, col) = (x / 8, x % 8);
      // A glyph's strokes from a hash of its cell: a few verticals and horizontals.
      let g = (line * 7919 + cell * 104_729) % 251;
      let ink = row < 10
        && cell % 9 != 8
        && ((col == 1 && g % 3 != 0) || (col == 5 && g % 5 < 3) || (row == 2 && g % 2 == 0) || (row == 8 && g % 7 < 4));
      data[y * w + x] = if ink { 16 } else { 235 };
    }
  }
  f
}

/// Scrolling text at a low rate (640x360, 250 kbit/s): H.264 and VP9 keep it much sharper in
/// their screen-content modes (measured here: H.264 3 -> 14 frames of 60 made, the rest skipped
/// by its rate control, at 25.8 -> 35.9 dB; VP9 34.5 -> 37.8 dB); VP8's mode changes its rate
/// control only (28.1 dB either way) and must not make it worse.
#[test]
fn screen_content_mode_keeps_text_sharper_at_a_low_rate() {
  for codec in CODECS {
    let mut out = Vec::new();
    for screen in [false, true] {
      let cfg = EncoderConfig {
        screen_content: screen,
        adaptive_speed: false,
        ..config(640, 360, 250_000)
      };
      let mut enc = new_encoder(codec, &cfg).unwrap();
      let mut dec = new_decoder(codec).unwrap();
      let (mut sum, mut n, mut made) = (0.0, 0, 0);
      for i in 0..60u32 {
        let page = text_page(640, 360, i * 2);
        // openh264's screen mode may skip a frame the rate cannot afford.
        let Some(e) = enc.encode(&page.as_ref(), i64::from(i) * FRAME_US, i == 0).unwrap() else {
          continue;
        };
        made += 1;
        if let Some(d) = dec.decode(&e.data).unwrap() {
          if i >= 30 {
            sum += psnr(&page, &d);
            n += 1;
          }
        }
      }
      out.push((sum / f64::from(n.max(1)), made));
    }
    let ((camera, camera_made), (screen, screen_made)) = (out[0], out[1]);
    assert!(
      screen_made >= camera_made,
      "{codec}: {camera_made} -> {screen_made} frames made"
    );
    match codec {
      VideoCodec::Vp8 => assert!(screen > camera - 0.5, "VP8: {camera:.2} -> {screen:.2} dB"),
      _ => assert!(screen > camera + 1.5, "{codec}: {camera:.2} -> {screen:.2} dB"),
    }
  }
}

#[test]
fn the_bitstream_tells_keyframes_from_delta_frames_in_real_encoder_output() {
  use crate::bitstream::inspect;
  for codec in CODECS {
    let mut enc = new_encoder(codec, &config(352, 288, 600_000)).unwrap();
    for n in 0..20 {
      let out = encode(enc.as_mut(), &pattern(352, 288, n as u32), n, n == 12);
      let info = inspect(codec, &out.data).unwrap_or_else(|e| panic!("{codec}: frame {n}: {e}"));
      assert_eq!(info.keyframe, out.keyframe, "{codec}: frame {n}");
      if codec == VideoCodec::Vp8 && out.keyframe {
        assert_eq!(info.size, Some((352, 288)), "VP8 keyframe size");
      }
    }
  }
}

#[test]
fn malformed_encoded_frames_are_refused_with_the_reason() {
  use crate::bitstream::inspect;
  let refused = |codec, data: &[u8], words: &str| {
    let e = inspect(codec, data).expect_err(words);
    assert_eq!(e.code(), "ERR_INVALID_BITSTREAM");
    assert!(e.to_string().contains(words), "{codec}: {e}");
  };
  for codec in CODECS {
    refused(codec, &[], "empty");
  }
  refused(VideoCodec::Vp8, &[0x10, 0x02], "shorter than the 3-byte frame tag");
  // A keyframe tag announcing a first partition far longer than the frame.
  refused(
    VideoCodec::Vp8,
    &[0x50, 0xff, 0xff, 0x9d, 0x01, 0x2a, 16, 0, 16, 0],
    "first partition",
  );
  refused(
    VideoCodec::Vp8,
    &[0x00, 0x00, 0x00, 0, 0, 0, 16, 0, 16, 0],
    "start code",
  );
  refused(VideoCodec::Vp9, &[0x40, 0, 0, 0], "frame marker");
  // AVCC (a 4-byte length before each NAL unit) is not Annex B.
  refused(VideoCodec::H264, &[0, 0, 0, 9, 0x65, 0x88, 0x84], "Annex-B");
  refused(VideoCodec::H264, &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00], "SPS and PPS");
  refused(
    VideoCodec::H264,
    &[0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce],
    "without a coded slice",
  );
  refused(VideoCodec::H264, &[0, 0, 1, 0xe5, 0x88], "forbidden bit");
  refused(VideoCodec::Av1, &[0x12, 0x00], "not supported");
}
