//! One encoder per published track, on its own thread (never the caller's): takes the newest
//! frame from the source's slot, encodes it (keyframe on PLI/FIR, bitrate capped by the
//! bandwidth estimate) and hands it to the publisher transport with its rotation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::options::{VideoCodec, VideoEncoding};
use crate::pc::{OutgoingFrame, Pc};
use crate::video_source::FrameSlot;
use crate::{RtcError, RtcResult};

/// Flags and counters shared between the engine and one encoder thread.
#[derive(Default)]
pub(crate) struct EncoderControl {
  pub keyframe: AtomicBool,
  pub frames_encoded: AtomicU64,
  pub keyframes_encoded: AtomicU64,
  /// Frames handed to the transport that it refused (e.g. before it connected).
  pub frames_unsent: AtomicU64,
  pub bytes_sent: AtomicU64,
  pub bitrate_bps: AtomicU64,
  /// Where encoded frames go. A full reconnect moves the track to a new transport and mid
  /// while the encoder runs on.
  pub route: Mutex<Option<EncoderRoute>>,
}

/// The transport and transceiver (mid) a track's frames are written to.
pub(crate) struct EncoderRoute {
  pub pc: Pc,
  pub mid: String,
}

impl EncoderControl {
  pub fn new(route: EncoderRoute) -> Self {
    let control = Self::default();
    control.set_route(route);
    control
  }

  /// Sends the next frames to `route`, starting with a keyframe.
  pub fn set_route(&self, route: EncoderRoute) {
    *self.route.lock().unwrap_or_else(|e| e.into_inner()) = Some(route);
    self.keyframe.store(true, Ordering::Relaxed);
  }

  fn write(&self, frame: OutgoingFrame) -> RtcResult<()> {
    let route = self.route.lock().unwrap_or_else(|e| e.into_inner());
    match route.as_ref() {
      Some(route) => route.pc.write_video(&route.mid, frame),
      None => Err(RtcError::NotConnected),
    }
  }
}

pub(crate) struct EncoderParams {
  pub encoding: VideoEncoding,
  pub mid: String,
}

/// The codec seam: what the encoder loop needs from `lkrtc-codec`.
pub(crate) trait FrameEncoder: Send {
  fn encode(
    &mut self,
    frame: &lkrtc_video::VideoFrame<&[u8]>,
    timestamp_us: i64,
    keyframe: bool,
  ) -> RtcResult<Option<(Vec<u8>, bool)>>;
  fn set_bitrate(&mut self, bps: u64) -> RtcResult<()>;
}

struct CodecEncoder(Box<dyn lkrtc_codec::VideoEncoder>);

impl FrameEncoder for CodecEncoder {
  fn encode(
    &mut self,
    frame: &lkrtc_video::VideoFrame<&[u8]>,
    timestamp_us: i64,
    keyframe: bool,
  ) -> RtcResult<Option<(Vec<u8>, bool)>> {
    match self.0.encode(frame, timestamp_us, keyframe) {
      Ok(out) => Ok(out.map(|e| (e.data, e.keyframe))),
      Err(e) => Err(RtcError::Codec(e.to_string())),
    }
  }

  fn set_bitrate(&mut self, bps: u64) -> RtcResult<()> {
    self.0.set_bitrate(bps.clamp(1000, u64::from(u32::MAX)) as u32);
    Ok(())
  }
}

/// Creates the encoder up front, so a codec problem fails a publish before the server hears of it.
pub(crate) fn new_encoder(
  codec: VideoCodec,
  width: u32,
  height: u32,
  encoding: VideoEncoding,
) -> RtcResult<Box<dyn FrameEncoder>> {
  let config = lkrtc_codec::EncoderConfig {
    width,
    height,
    bitrate_bps: encoding.max_bitrate.clamp(1000, u64::from(u32::MAX)) as u32,
    max_framerate: encoding.max_framerate.clamp(1.0, 240.0),
  };
  match lkrtc_codec::new_encoder(codec, &config) {
    Ok(encoder) => Ok(Box::new(CodecEncoder(encoder))),
    Err(e) => Err(RtcError::Codec(e.to_string())),
  }
}

/// Starts the encoder thread. It ends when the slot closes (unpublish, source closed, disconnect).
pub(crate) fn spawn(
  params: EncoderParams,
  mut encoder: Box<dyn FrameEncoder>,
  slot: Arc<FrameSlot>,
  control: Arc<EncoderControl>,
  bwe_bps: Arc<AtomicU64>,
) -> RtcResult<std::thread::JoinHandle<()>> {
  std::thread::Builder::new()
    .name(format!("lkrtc-encoder-{}", params.mid))
    .spawn(move || run(params, slot, control, bwe_bps, encoder.as_mut()))
    .map_err(|e| RtcError::Codec(format!("cannot start the encoder thread: {e}")))
}

fn run(
  params: EncoderParams,
  slot: Arc<FrameSlot>,
  control: Arc<EncoderControl>,
  bwe_bps: Arc<AtomicU64>,
  encoder: &mut dyn FrameEncoder,
) {
  let target = params.encoding.max_bitrate.max(1);
  let interval_us = if params.encoding.max_framerate > 0.0 {
    (1e6 / params.encoding.max_framerate) as i64
  } else {
    0
  };
  // When the next frame is due under max_framerate. A frame up to a quarter interval early
  // still counts, so a source whose timer jitters around the cap keeps every frame, while a
  // source at twice the cap loses every other one.
  let mut next_due: Option<i64> = None;
  let mut bitrate = target;
  control.bitrate_bps.store(bitrate, Ordering::Relaxed);
  let mut last_ts: Option<i64> = None;
  // The first frame is a keyframe whatever the encoder thinks.
  control.keyframe.store(true, Ordering::Relaxed);
  while let Ok(next) = slot.take(Duration::from_millis(200)) {
    let Some(frame) = next else { continue };
    // Honour max_framerate: a source running faster than the cap drops frames here.
    let ts = frame.timestamp_us;
    if let Some(due) = next_due {
      let restarted = last_ts.is_some_and(|prev| ts < prev);
      if !restarted && ts < due - interval_us / 4 {
        continue;
      }
      next_due = Some(if restarted {
        ts + interval_us
      } else {
        (due + interval_us).max(ts)
      });
    } else {
      next_due = Some(ts + interval_us);
    }
    last_ts = Some(ts);
    let estimate = bwe_bps.load(Ordering::Relaxed);
    let wanted = if estimate > 0 {
      target.min(estimate).max(30_000)
    } else {
      target
    };
    // Retune only on a >10% change: every call resets parts of the rate control.
    if wanted.abs_diff(bitrate) * 10 > bitrate && encoder.set_bitrate(wanted).is_ok() {
      bitrate = wanted;
      control.bitrate_bps.store(bitrate, Ordering::Relaxed);
    }
    let force = control.keyframe.swap(false, Ordering::Relaxed);
    match encoder.encode(&frame.i420.as_ref(), frame.timestamp_us, force) {
      Ok(Some((data, keyframe))) => {
        let len = data.len() as u64;
        let out = OutgoingFrame {
          data,
          keyframe,
          capture_time_us: frame.timestamp_us,
          rotation: frame.rotation,
        };
        control.frames_encoded.fetch_add(1, Ordering::Relaxed);
        if keyframe {
          control.keyframes_encoded.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = control.write(out) {
          tracing::debug!("dropping an encoded frame: {e}");
          control.frames_unsent.fetch_add(1, Ordering::Relaxed);
        } else {
          control.bytes_sent.fetch_add(len, Ordering::Relaxed);
        }
      }
      Ok(None) => {}
      Err(e) => {
        tracing::warn!("encoder error on {}: {e}", params.mid);
        if force {
          control.keyframe.store(true, Ordering::Relaxed);
        }
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::options::VideoSourceOptions;
  use crate::pc::Role;
  use crate::video_source::VideoSource;
  use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};

  fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
      assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
      std::thread::sleep(Duration::from_millis(5));
    }
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn encodes_the_newest_frames_and_keyframes_on_request() {
    let (pc, _events) = Pc::start(Role::Publisher, std::net::Ipv4Addr::LOCALHOST.into())
      .await
      .unwrap();
    let source = VideoSource::new(320, 240, VideoSourceOptions::default()).unwrap();
    let encoding = VideoEncoding {
      max_bitrate: 300_000,
      max_framerate: 30.0,
    };
    let encoder = new_encoder(VideoCodec::Vp8, 320, 240, encoding).unwrap();
    let control = Arc::new(EncoderControl::new(EncoderRoute { pc, mid: "0".into() }));
    let slot = source.attach();
    let params = EncoderParams {
      encoding,
      mid: "0".into(),
    };
    let thread = spawn(
      params,
      encoder,
      slot.clone(),
      control.clone(),
      Arc::new(AtomicU64::new(0)),
    )
    .unwrap();
    let frame = VideoFrame::new_zeroed(320, 240, VideoBufferType::I420).unwrap();
    let mut ts = 1_000_000;
    let mut capture = |n: usize| {
      for _ in 0..n {
        source
          .capture_frame(&frame.as_ref(), ts, VideoRotation::Rotation0)
          .unwrap();
        ts += 33_333;
        std::thread::sleep(Duration::from_millis(10));
      }
    };
    capture(10);
    wait_for("frames", || control.frames_encoded.load(Ordering::Relaxed) >= 3);
    assert_eq!(
      control.keyframes_encoded.load(Ordering::Relaxed),
      1,
      "only the first frame is a keyframe"
    );
    control.keyframe.store(true, Ordering::Relaxed);
    capture(5);
    wait_for("a requested keyframe", || {
      control.keyframes_encoded.load(Ordering::Relaxed) == 2
    });
    source.close();
    thread.join().unwrap();
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn max_framerate_drops_frames_that_come_too_fast() {
    let (pc, _events) = Pc::start(Role::Publisher, std::net::Ipv4Addr::LOCALHOST.into())
      .await
      .unwrap();
    let source = VideoSource::new(64, 64, VideoSourceOptions::default()).unwrap();
    let encoding = VideoEncoding {
      max_bitrate: 100_000,
      max_framerate: 10.0,
    };
    let encoder = new_encoder(VideoCodec::Vp8, 64, 64, encoding).unwrap();
    let control = Arc::new(EncoderControl::new(EncoderRoute { pc, mid: "0".into() }));
    let slot = source.attach();
    let params = EncoderParams {
      encoding,
      mid: "0".into(),
    };
    let thread = spawn(params, encoder, slot, control.clone(), Arc::new(AtomicU64::new(0))).unwrap();
    let frame = VideoFrame::new_zeroed(64, 64, VideoBufferType::I420).unwrap();
    // 30 frames stamped 1/30 s apart = 1 s of video: at 10 fps about 10 survive.
    for n in 0..30i64 {
      source
        .capture_frame(&frame.as_ref(), 1_000_000 + n * 33_333, VideoRotation::Rotation0)
        .unwrap();
      std::thread::sleep(Duration::from_millis(15));
    }
    std::thread::sleep(Duration::from_millis(100));
    let encoded = control.frames_encoded.load(Ordering::Relaxed);
    assert!((8..=12).contains(&encoded), "{encoded}");
    source.close();
    thread.join().unwrap();
  }
}
