//! Encode and decode speed of each codec at 720p and 1080p, in ms per frame, on a moving pattern.
//! Run with `cargo run --release -p lkrtc-codec --example codec_speed`.

use std::time::{Duration, Instant};

use lkrtc_codec::{new_decoder, new_encoder, EncoderConfig, VideoBufferType, VideoCodec, VideoFrame};

const FRAMES: u32 = 90;

/// A moving pattern: scrolling gradient, a moving square and a scrolling striped band.
fn pattern(width: u32, height: u32, n: u32) -> VideoFrame {
  let mut frame = VideoFrame::new_zeroed(width, height, VideoBufferType::I420).expect("frame");
  let (w, h, t) = (width as usize, height as usize, n as usize);
  let y_plane = frame.plane_mut(0).expect("Y");
  for y in 0..h {
    for x in 0..w {
      let mut v = ((x + t * 6) * 160 / w + y * 60 / h) % 220 + 16;
      if (x + w - (t * 9) % w) % w < w / 6 && y > h / 4 && y < h / 2 {
        v = 235;
      }
      if y > h * 3 / 4 && y < h * 3 / 4 + h / 12 {
        v = if ((x + t * 3) / 3) % 2 == 0 { 200 } else { 60 };
      }
      y_plane[y * w + x] = v as u8;
    }
  }
  for plane in 1..3 {
    let cw = w.div_ceil(2);
    for (i, px) in frame.plane_mut(plane).expect("chroma").iter_mut().enumerate() {
      let (x, y) = (i % cw, i / cw);
      *px = (64 + (if plane == 1 { x } else { y } * 2 + t) % 128) as u8;
    }
  }
  frame
}

fn ms(d: Duration, n: u32) -> f64 {
  d.as_secs_f64() * 1000.0 / f64::from(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
  println!(
    "{:<6} {:>10} {:>10} {:>10} {:>12} {:>8}",
    "codec", "size", "encode ms", "decode ms", "kbit/frame", "cores"
  );
  for (w, h, bitrate) in [(1280u32, 720u32, 2_500_000u32), (1920, 1080, 4_000_000)] {
    let frames: Vec<VideoFrame> = (0..FRAMES).map(|n| pattern(w, h, n)).collect();
    for codec in [VideoCodec::Vp8, VideoCodec::H264] {
      let config = EncoderConfig {
        screen_content: false,
        adaptive_speed: false,
        width: w,
        height: h,
        bitrate_bps: bitrate,
        max_framerate: 30.0,
      };
      let mut enc = new_encoder(codec, &config)?;
      let mut encoded = Vec::new();
      let start = Instant::now();
      for (n, frame) in frames.iter().enumerate() {
        if let Some(out) = enc.encode(&frame.as_ref(), n as i64 * 33_333, false)? {
          encoded.push(out);
        }
      }
      let encode_time = start.elapsed();

      let mut dec = new_decoder(codec)?;
      let start = Instant::now();
      for frame in &encoded {
        dec.decode(&frame.data)?;
      }
      let decode_time = start.elapsed();
      let bits: usize = encoded.iter().map(|f| f.data.len() * 8).sum();
      println!(
        "{:<6} {:>10} {:>10.2} {:>10.2} {:>12.1} {:>8}",
        codec.to_string(),
        format!("{w}x{h}"),
        ms(encode_time, FRAMES),
        ms(decode_time, encoded.len().max(1) as u32),
        bits as f64 / 1000.0 / encoded.len().max(1) as f64,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
      );
    }
  }
  Ok(())
}
