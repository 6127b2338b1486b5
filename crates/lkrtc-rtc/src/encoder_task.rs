//! One encoder per published track (per layer of a simulcast track), on its own thread (never
//! the caller's): takes the newest frame from the source's slot and encodes it at the track's
//! (layer's) share of the publisher's bandwidth estimate. It skips frames while the pacer's
//! queue is long, serves keyframe requests at most every 300 ms, and sends a smaller picture
//! (or fewer frames, after the publication's degradation preference) when the estimate cannot
//! carry the source's. A simulcast layer keeps its size: it is scaled once from the source, and
//! paused (no encoding at all) while the allocator gives it nothing or no subscriber wants it,
//! resuming with a keyframe; the decisions are in `send_control/`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lkrtc_video::{VideoBufferType, VideoFrame};

use crate::options::{DegradationPreference, VideoCodec, VideoEncoding};
use crate::pc::{OutgoingFrame, Pc};
use crate::send_control::{
  BudgetShare, FrameOutcome, KeyframePacing, LayerShare, PictureAdaptation, SendBudget, SendQueue, SendSize, TargetRate,
};
use crate::stats::EgressCounts;
use crate::video_source::FrameSlot;
use crate::{RtcError, RtcResult};

/// A frame is not made while the pacer's oldest packet has waited longer than this (or four
/// frame intervals).
const PACER_QUEUE_MAX: Duration = Duration::from_millis(150);
/// A pacer queue sample older than this is not acted on.
const PACER_SAMPLE_FRESH: Duration = Duration::from_millis(200);

/// Flags and counters shared between the engine and one encoder thread.
#[derive(Default)]
pub(crate) struct EncoderControl {
  /// The simulcast layer's RTP stream id; `None` for a single-layer track.
  pub rid: Option<String>,
  /// The layer is paused: no bits for it, or no subscriber wants it.
  pub paused: AtomicBool,
  pub keyframe: AtomicBool,
  /// A new route: the next frame is a keyframe whatever the keyframe pacing says.
  pub(crate) new_route: AtomicBool,
  pub frames_encoded: AtomicU64,
  pub keyframes_encoded: AtomicU64,
  /// Frames not encoded because the pacer's queue was long.
  pub frames_skipped: AtomicU64,
  /// Pre-encoded frames not sent (muted, congested, or waiting for a keyframe).
  pub frames_dropped: AtomicU64,
  /// Frames handed to the transport that it refused (e.g. before it connected).
  pub frames_unsent: AtomicU64,
  pub bytes_sent: AtomicU64,
  pub bitrate_bps: AtomicU64,
  /// The track's share of the bandwidth estimate (0: none yet).
  pub available_bps: AtomicU64,
  /// The size of the picture sent (0 before the first frame).
  pub sent_width: AtomicU32,
  pub sent_height: AtomicU32,
  /// Where encoded frames go. A full reconnect moves the track to a new transport and mid
  /// while the encoder runs on.
  pub route: Mutex<Option<EncoderRoute>>,
  /// What the transport counted for this stream, and when the last frames were encoded (for
  /// the frame rate) and skipped (for the quality limitation).
  pub(crate) sending: Mutex<SendingCounts>,
  /// The transport's last sample of the pacer's queue for this layer: when, and how long its
  /// oldest packet had waited.
  pub(crate) pacer_queue: Mutex<Option<(Instant, Duration)>>,
}

/// The send counters an encoder shares with the statistics.
#[derive(Debug, Default)]
pub(crate) struct SendingCounts {
  pub transport: EgressCounts,
  pub encoded_at: std::collections::VecDeque<Instant>,
  pub last_skip: Option<Instant>,
  /// The library encoding (`libvpx`, `openh264`).
  pub encoder: &'static str,
}

impl SendingCounts {
  /// Frames encoded over the last second.
  pub fn frames_per_second(&self, now: Instant) -> f64 {
    self
      .encoded_at
      .iter()
      .filter(|t| now.duration_since(**t) <= Duration::from_secs(1))
      .count() as f64
  }

  pub(crate) fn encoded(&mut self, now: Instant) {
    self.encoded_at.push_back(now);
    while self
      .encoded_at
      .front()
      .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
    {
      self.encoded_at.pop_front();
    }
  }
}

/// The transport and transceiver (mid) a track's frames are written to.
pub(crate) struct EncoderRoute {
  pub pc: Pc,
  pub mid: String,
}

impl EncoderControl {
  /// The control of the simulcast layer `rid` (`None`: a single-layer track).
  pub fn for_layer(route: EncoderRoute, rid: Option<String>) -> Self {
    let control = Self { rid, ..Self::default() };
    control.set_route(route);
    control
  }

  /// Sends the next frames to `route`, starting with a keyframe.
  pub fn set_route(&self, route: EncoderRoute) {
    *self.route.lock().unwrap_or_else(|e| e.into_inner()) = Some(route);
    self.new_route.store(true, Ordering::Relaxed);
    self.keyframe.store(true, Ordering::Relaxed);
  }

  /// A frame was not sent for congestion: counted, and when (for the quality limitation).
  pub(crate) fn skipped(&self) {
    self.frames_skipped.fetch_add(1, Ordering::Relaxed);
    self.sending_counts().last_skip = Some(Instant::now());
  }

  pub(crate) fn record_send_queue(&self, delay: Duration) {
    *self.pacer_queue.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), delay));
  }

  /// How long the oldest packet in the pacer's queue has waited, from a sample taken at most
  /// [`PACER_SAMPLE_FRESH`] ago (the transport samples every 20 ms while the queue holds
  /// anything, and once more when it empties).
  fn pacer_queue_delay(&self, now: Instant) -> Option<Duration> {
    let sample = *self.pacer_queue.lock().unwrap_or_else(|e| e.into_inner());
    sample
      .filter(|(at, _)| now.saturating_duration_since(*at) <= PACER_SAMPLE_FRESH)
      .map(|(_, delay)| delay)
  }

  pub(crate) fn record_egress(&self, counts: EgressCounts) {
    self.sending.lock().unwrap_or_else(|e| e.into_inner()).transport = counts;
  }

  pub(crate) fn sending_counts(&self) -> std::sync::MutexGuard<'_, SendingCounts> {
    self.sending.lock().unwrap_or_else(|e| e.into_inner())
  }

  pub(crate) fn write(&self, frame: OutgoingFrame) -> RtcResult<()> {
    let route = self.route.lock().unwrap_or_else(|e| e.into_inner());
    match route.as_ref() {
      Some(route) => route.pc.write_video(&route.mid, frame),
      None => Err(RtcError::NotConnected),
    }
  }

  pub(crate) fn set_desired_bitrate(&self, bps: u64, padding_bps: u64) {
    let route = self.route.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(route) = route.as_ref() {
      route.pc.set_desired_bitrate(bps, padding_bps);
    }
  }
}

pub(crate) struct EncoderParams {
  pub encoding: VideoEncoding,
  pub mid: String,
  pub preference: DegradationPreference,
  /// A simulcast layer: its size, and its place in the track's allocation.
  pub layer: Option<LayerParams>,
  /// The track is muted: nothing is encoded; unmuting restarts with a keyframe.
  pub muted: Arc<AtomicBool>,
}

/// What makes an encoder thread one layer of a simulcast track.
pub(crate) struct LayerParams {
  pub width: u32,
  pub height: u32,
  /// The source size the layer's was computed from: a source of another size scales it alike.
  pub source_width: u32,
  pub source_height: u32,
  pub share: Arc<LayerShare>,
  pub index: usize,
}

/// A simulcast layer's size, and the source size it was computed for.
#[derive(Clone, Copy)]
struct LayerSize {
  layer: SendSize,
  source: SendSize,
}

impl LayerSize {
  /// The layer's size for a source of `source` size: the same share of it (even sizes, 2x2 at
  /// least), so a source that changes size keeps its layers' proportions.
  fn for_source(&self, source: SendSize) -> SendSize {
    if source == self.source {
      return self.layer;
    }
    let scale = |layer: u32, was: u32, now: u32| {
      let v = (u64::from(layer) * u64::from(now) / u64::from(was.max(1))) as u32;
      (v & !1).max(2).min(now.max(2))
    };
    SendSize {
      width: scale(self.layer.width, self.source.width, source.width),
      height: scale(self.layer.height, self.source.height, source.height),
    }
  }
}

/// Where an encoder's part of the estimate comes from.
enum Share {
  Track(BudgetShare),
  Layer(Arc<LayerShare>, usize),
}

impl Share {
  fn allocation(&self) -> Option<u64> {
    match self {
      Share::Track(s) => s.allocation(),
      Share::Layer(s, i) => s.allocation(*i),
    }
  }

  /// What the estimator probes towards and what the pacer pads up to, for all tracks.
  fn rates(&self) -> (u64, u64) {
    let share = match self {
      Share::Track(s) => s,
      Share::Layer(s, _) => s.track_share(),
    };
    (desired_bitrate(share.total_max()), share.total_padding())
  }
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
  /// Encodes pictures of another size from now on (the next frame is a keyframe).
  fn resize(&mut self, width: u32, height: u32, bps: u64) -> RtcResult<()>;
  /// The size a subscriber decodes from a picture of `width` x `height`.
  fn coded_size(&self, width: u32, height: u32) -> (u32, u32) {
    (width, height)
  }
  /// What it encodes.
  fn codec(&self) -> VideoCodec;
}

struct CodecEncoder {
  inner: Box<dyn lkrtc_codec::VideoEncoder>,
  codec: VideoCodec,
  max_framerate: f64,
  screen_content: bool,
}

fn codec_config(
  width: u32,
  height: u32,
  bps: u64,
  max_framerate: f64,
  screen_content: bool,
) -> lkrtc_codec::EncoderConfig {
  lkrtc_codec::EncoderConfig {
    width,
    height,
    bitrate_bps: bps.clamp(1000, u64::from(u32::MAX)) as u32,
    max_framerate: max_framerate.clamp(1.0, 240.0),
    screen_content,
    // A live track: frames that take too long to encode cost more than some quality.
    adaptive_speed: true,
  }
}

impl FrameEncoder for CodecEncoder {
  fn encode(
    &mut self,
    frame: &lkrtc_video::VideoFrame<&[u8]>,
    timestamp_us: i64,
    keyframe: bool,
  ) -> RtcResult<Option<(Vec<u8>, bool)>> {
    match self.inner.encode(frame, timestamp_us, keyframe) {
      Ok(out) => Ok(out.map(|e| (e.data, e.keyframe))),
      Err(e) => Err(RtcError::Codec(e.to_string())),
    }
  }

  fn set_bitrate(&mut self, bps: u64) -> RtcResult<()> {
    self.inner.set_bitrate(bps.clamp(1000, u64::from(u32::MAX)) as u32);
    Ok(())
  }

  fn resize(&mut self, width: u32, height: u32, bps: u64) -> RtcResult<()> {
    let config = codec_config(width, height, bps, self.max_framerate, self.screen_content);
    self.inner = lkrtc_codec::new_encoder(self.codec, &config).map_err(|e| RtcError::Codec(e.to_string()))?;
    Ok(())
  }

  fn coded_size(&self, width: u32, height: u32) -> (u32, u32) {
    lkrtc_codec::coded_size(self.codec, width, height)
  }

  fn codec(&self) -> VideoCodec {
    self.codec
  }
}

/// Creates the encoder up front, so a codec problem fails a publish before the server hears of it.
/// `screen_content`: a screencast source, encoded in the codec's screen-content mode.
pub(crate) fn new_encoder(
  codec: VideoCodec,
  width: u32,
  height: u32,
  encoding: VideoEncoding,
  screen_content: bool,
) -> RtcResult<Box<dyn FrameEncoder>> {
  let config = codec_config(
    width,
    height,
    encoding.max_bitrate,
    encoding.max_framerate,
    screen_content,
  );
  match lkrtc_codec::new_encoder(codec, &config) {
    Ok(encoder) => Ok(Box::new(CodecEncoder {
      inner: encoder,
      codec,
      max_framerate: encoding.max_framerate,
      screen_content,
    })),
    Err(e) => Err(RtcError::Codec(e.to_string())),
  }
}

/// Starts the encoder thread. It ends when the slot closes (unpublish, source closed, disconnect).
pub(crate) fn spawn(
  params: EncoderParams,
  mut encoder: Box<dyn FrameEncoder>,
  slot: Arc<FrameSlot>,
  control: Arc<EncoderControl>,
  budget: Arc<SendBudget>,
) -> RtcResult<std::thread::JoinHandle<()>> {
  std::thread::Builder::new()
    .name(match params.layer.as_ref() {
      Some(l) => format!("lkrtc-encoder-{}-{}", params.mid, l.index),
      None => format!("lkrtc-encoder-{}", params.mid),
    })
    .spawn(move || run(params, slot, control, budget, encoder.as_mut()))
    .map_err(|e| RtcError::Codec(format!("cannot start the encoder thread: {e}")))
}

/// The desired rate told to the estimator: the tracks' max bitrates plus RTP and retransmission
/// overhead, so the estimate can reach what the encoders may use.
pub(crate) fn desired_bitrate(total_max: u64) -> u64 {
  total_max.saturating_mul(5) / 4
}

fn run(
  params: EncoderParams,
  slot: Arc<FrameSlot>,
  control: Arc<EncoderControl>,
  budget: Arc<SendBudget>,
  encoder: &mut dyn FrameEncoder,
) {
  let max_framerate = params.encoding.max_framerate;
  // A layer keeps its size (the allocator pauses layers instead; libwebrtc likewise turns the
  // quality scaler's size steps off for simulcast); its frame rate still gives way.
  let (share, layer_size, preference) = match params.layer {
    Some(l) => (
      Share::Layer(l.share, l.index),
      Some(LayerSize {
        layer: SendSize {
          width: l.width,
          height: l.height,
        },
        source: SendSize {
          width: l.source_width,
          height: l.source_height,
        },
      }),
      DegradationPreference::MaintainResolution,
    ),
    None => (
      Share::Track(budget.register(params.encoding.max_bitrate.max(1))),
      None,
      params.preference,
    ),
  };
  let mut rate = TargetRate::new(params.encoding.max_bitrate.max(1));
  let mut queue = SendQueue::default();
  // Frames skipped in a row on the pacer's real queue.
  let mut queue_skips = 0u32;
  let mut keyframes = KeyframePacing::default();
  let mut adaptation = PictureAdaptation::new(preference, max_framerate, params.encoding.max_bitrate);
  let clock = Instant::now();
  // The size the encoder was made for: the layer's, or the source's until the first change.
  let mut encoder_size: Option<SendSize> = layer_size.map(|l| l.layer);
  let mut paused = false;
  let mut scaled: Option<VideoFrame> = None;
  let mut desired_told: Option<(u64, u64)> = None;
  // When the next frame is due under the frame rate. A frame up to a quarter interval early
  // still counts, so a source whose timer jitters around the cap keeps every frame, while a
  // source at twice the cap loses every other one.
  let mut next_due: Option<i64> = None;
  control.bitrate_bps.store(rate.current(), Ordering::Relaxed);
  let mut last_ts: Option<i64> = None;
  // The first frame is a keyframe whatever the encoder thinks.
  keyframes.request();
  while let Ok(next) = slot.take(Duration::from_millis(200)) {
    let Some(frame) = next else { continue };
    let now_us = clock.elapsed().as_micros() as i64;
    let source = SendSize {
      width: frame.i420.width(),
      height: frame.i420.height(),
    };
    // What adaptation starts from: the layer's picture, or the source's.
    let base = layer_size.map_or(source, |l| l.for_source(source));
    let fps = adaptation.framerate(encoder_size.unwrap_or(base), rate.current());
    let interval_us = if fps > 0.0 { (1e6 / fps) as i64 } else { 0 };
    // Honour the frame rate: a source running faster than it loses frames here.
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

    let new_route = control.new_route.swap(false, Ordering::Relaxed);
    if new_route {
      queue.clear();
      desired_told = None;
    }
    let rates = share.rates();
    if desired_told != Some(rates) {
      control.set_desired_bitrate(rates.0, rates.1);
      desired_told = Some(rates);
    }
    let allocation = share.allocation();
    control.available_bps.store(allocation.unwrap_or(0), Ordering::Relaxed);
    // A paused layer (or a muted track) costs nothing but this check; it comes back with a
    // keyframe. A track published muted still sends its first frame: the server announces a
    // track to the room only once its media has started.
    let muted = params.muted.load(Ordering::Acquire) && control.frames_encoded.load(Ordering::Relaxed) > 0;
    let pause = muted || (layer_size.is_some() && allocation == Some(0));
    if pause != paused {
      paused = pause;
      control.paused.store(pause, Ordering::Relaxed);
      if !pause {
        queue.clear();
        keyframes.request();
        control.new_route.store(true, Ordering::Relaxed);
      }
    }
    if pause {
      continue;
    }
    let new_route = new_route || control.new_route.swap(false, Ordering::Relaxed);
    if let Some(target) = rate.update(allocation, now_us) {
      if encoder.set_bitrate(target).is_ok() {
        control.bitrate_bps.store(target, Ordering::Relaxed);
      }
    }
    if control.keyframe.swap(false, Ordering::Relaxed) {
      keyframes.request();
    }
    // Latency first: while the pacer holds more than two frames, this frame is not made. The
    // model of the queue (what was written, drained at the track's share of the estimate) and
    // the queue itself, for what the model misses (a keyframe paced over several intervals,
    // retransmissions).
    if let Some(pace) = allocation {
      queue.drain(now_us, pace);
      if !new_route && queue.congested(pace, interval_us) {
        tracing::trace!(
          mid = %params.mid,
          queue_ms = queue.delay_us(pace) / 1000,
          pace,
          "frame skipped: the modelled queue is too long"
        );
        control.skipped();
        adaptation.record(FrameOutcome::Skipped, rate.current(), now_us);
        continue;
      }
      // The real queue is judged with more slack (str0m paces a large frame, a keyframe most of
      // all, over several intervals), and its skips do not make the picture smaller: the
      // estimate, when it falls, does.
      let real = control.pacer_queue_delay(Instant::now());
      let waiting = real.is_some_and(|d| d > PACER_QUEUE_MAX.max(Duration::from_micros(4 * interval_us as u64)));
      // At most two frames in a row are skipped on it, so a path whose pacer stays behind (a
      // slow TCP path) still gets a third of the frames.
      if !new_route && waiting && queue_skips < 2 {
        tracing::trace!(mid = %params.mid, waited = ?real, "frame skipped: the pacer's queue is too long");
        queue_skips += 1;
        control.skipped();
        continue;
      }
      queue_skips = 0;
    }
    let mut force = new_route || keyframes.due(frame.timestamp_us);
    let size = adaptation.size(base.width, base.height, rate.current(), now_us);
    if encoder_size.is_some_and(|s| s != size) || (encoder_size.is_none() && size != source) {
      match encoder.resize(size.width, size.height, rate.current()) {
        Ok(()) => force = true,
        Err(e) => {
          tracing::warn!(
            "cannot resize the encoder of {} to {}x{}: {e}",
            params.mid,
            size.width,
            size.height
          );
          continue;
        }
      }
    }
    encoder_size = Some(size);
    let picture = if size == source {
      frame.i420.as_ref()
    } else {
      let buf = match scaled.take() {
        Some(b) if b.width() == size.width && b.height() == size.height => b,
        _ => match VideoFrame::new_zeroed(size.width, size.height, VideoBufferType::I420) {
          Ok(b) => b,
          Err(e) => {
            tracing::warn!("cannot scale a frame of {}: {e}", params.mid);
            continue;
          }
        },
      };
      let mut buf = buf;
      if let Err(e) = lkrtc_video::scale_i420_into(&frame.i420, &mut buf) {
        tracing::warn!("cannot scale a frame of {}: {e}", params.mid);
        continue;
      }
      scaled.insert(buf).as_ref()
    };
    match encoder.encode(&picture, frame.timestamp_us, force) {
      Ok(Some((mut data, keyframe))) => {
        // Every layer's picture of this frame carries the frame's metadata.
        let trailer_len = frame.metadata.as_ref().map_or(0, |m| {
          crate::frame_metadata::append_trailer_for(encoder.codec(), &mut data, m)
        });
        let len = data.len();
        adaptation.record(FrameOutcome::Encoded { bytes: len, keyframe }, rate.current(), now_us);
        let out = OutgoingFrame {
          data,
          keyframe,
          capture_time_us: frame.timestamp_us,
          rotation: frame.rotation,
          rid: control.rid.clone(),
          trailer_len,
        };
        control.frames_encoded.fetch_add(1, Ordering::Relaxed);
        {
          let mut sending = control.sending_counts();
          sending.encoded(Instant::now());
          sending.encoder = lkrtc_codec::library_name(encoder.codec());
        }
        let (sent_width, sent_height) = encoder.coded_size(size.width, size.height);
        control.sent_width.store(sent_width, Ordering::Relaxed);
        control.sent_height.store(sent_height, Ordering::Relaxed);
        if keyframe {
          keyframes.sent(frame.timestamp_us);
          control.keyframes_encoded.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = control.write(out) {
          tracing::debug!("dropping an encoded frame: {e}");
          control.frames_unsent.fetch_add(1, Ordering::Relaxed);
        } else {
          queue.push(len);
          control.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
        }
      }
      Ok(None) => {}
      Err(e) => {
        tracing::warn!("encoder error on {}: {e}", params.mid);
        if new_route {
          control.new_route.store(true, Ordering::Relaxed);
        }
      }
    }
  }
}

#[cfg(test)]
mod tests {
  #[test]
  fn a_pacer_queue_sample_counts_only_while_fresh() {
    let control = super::EncoderControl::default();
    let now = std::time::Instant::now();
    assert_eq!(control.pacer_queue_delay(now), None);
    control.record_send_queue(std::time::Duration::from_millis(400));
    assert_eq!(
      control.pacer_queue_delay(std::time::Instant::now()),
      Some(std::time::Duration::from_millis(400))
    );
    // A transport that stopped reporting (closed, moved) does not hold the encoder back.
    assert_eq!(control.pacer_queue_delay(now + std::time::Duration::from_secs(1)), None);
  }

  use super::*;
  use crate::options::VideoSourceOptions;
  use crate::pc::Role;
  use crate::video_source::VideoSource;
  use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};

  #[test]
  fn a_layer_keeps_its_share_of_a_source_that_changes_size() {
    let size = |width, height| SendSize { width, height };
    let layer = LayerSize {
      layer: size(320, 180),
      source: size(1280, 720),
    };
    assert!(layer.for_source(size(1280, 720)) == size(320, 180));
    assert!(layer.for_source(size(960, 720)) == size(240, 180));
    // Odd results round down to even; a tiny source still gets a 2x2 layer.
    assert!(layer.for_source(size(641, 359)) == size(160, 88));
    assert!(layer.for_source(size(3, 3)) == size(2, 2));
  }

  fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
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
    let encoder = new_encoder(VideoCodec::Vp8, 320, 240, encoding, false).unwrap();
    let control = Arc::new(EncoderControl::for_layer(EncoderRoute { pc, mid: "0".into() }, None));
    let slot = source.attach();
    let params = EncoderParams {
      encoding,
      mid: "0".into(),
      preference: DegradationPreference::Balanced,
      layer: None,
      muted: Arc::new(AtomicBool::new(false)),
    };
    let thread = spawn(
      params,
      encoder,
      slot.clone(),
      control.clone(),
      Arc::new(SendBudget::default()),
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
    let encoder = new_encoder(VideoCodec::Vp8, 64, 64, encoding, false).unwrap();
    let control = Arc::new(EncoderControl::for_layer(EncoderRoute { pc, mid: "0".into() }, None));
    let slot = source.attach();
    let params = EncoderParams {
      encoding,
      mid: "0".into(),
      preference: DegradationPreference::Balanced,
      layer: None,
      muted: Arc::new(AtomicBool::new(false)),
    };
    let thread = spawn(params, encoder, slot, control.clone(), Arc::new(SendBudget::default())).unwrap();
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

  /// A 640x360 VP8 encoder thread (800 kbit/s max) whose track's share of the estimate is
  /// `budget_bps`.
  async fn vp8_360p_encoder(
    budget_bps: u64,
    preference: DegradationPreference,
  ) -> (VideoSource, Arc<EncoderControl>, std::thread::JoinHandle<()>) {
    let (pc, _events) = Pc::start(Role::Publisher, std::net::Ipv4Addr::LOCALHOST.into())
      .await
      .unwrap();
    let source = VideoSource::new(640, 360, VideoSourceOptions::default()).unwrap();
    let encoding = VideoEncoding {
      max_bitrate: 800_000,
      max_framerate: 30.0,
    };
    let encoder = new_encoder(VideoCodec::Vp8, 640, 360, encoding, false).unwrap();
    let control = Arc::new(EncoderControl::for_layer(EncoderRoute { pc, mid: "0".into() }, None));
    let budget = Arc::new(SendBudget::default());
    budget.store(budget_bps, Ordering::Relaxed);
    let params = EncoderParams {
      encoding,
      mid: "0".into(),
      preference,
      layer: None,
      muted: Arc::new(AtomicBool::new(false)),
    };
    let thread = spawn(params, encoder, source.attach(), control.clone(), budget).unwrap();
    (source, control, thread)
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn a_short_estimate_sends_a_smaller_picture() {
    // Enough for 480x270 (300 kbit/s at 30 fps), not for 640x360 (500 kbit/s).
    let (source, control, thread) = vp8_360p_encoder(400_000, DegradationPreference::Balanced).await;
    let frame = VideoFrame::new_zeroed(640, 360, VideoBufferType::I420).unwrap();
    let mut ts = 1_000_000;
    // The size changes only after the estimate has been short for a while.
    wait_for("a smaller picture", || {
      source
        .capture_frame(&frame.as_ref(), ts, VideoRotation::Rotation0)
        .unwrap();
      ts += 33_333;
      std::thread::sleep(Duration::from_millis(30));
      control.sent_width.load(Ordering::Relaxed) == 480
    });
    assert_eq!(control.sent_height.load(Ordering::Relaxed), 270);
    assert_eq!(control.bitrate_bps.load(Ordering::Relaxed), 320_000);
    assert!(
      control.keyframes_encoded.load(Ordering::Relaxed) >= 2,
      "the new size starts with a keyframe"
    );
    source.close();
    thread.join().unwrap();
  }

  #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
  async fn maintain_resolution_keeps_the_source_size() {
    let (source, control, thread) = vp8_360p_encoder(200_000, DegradationPreference::MaintainResolution).await;
    let frame = VideoFrame::new_zeroed(640, 360, VideoBufferType::I420).unwrap();
    for n in 0..40i64 {
      source
        .capture_frame(&frame.as_ref(), 1_000_000 + n * 33_333, VideoRotation::Rotation0)
        .unwrap();
      std::thread::sleep(Duration::from_millis(30));
    }
    wait_for("frames", || control.frames_encoded.load(Ordering::Relaxed) >= 2);
    assert_eq!(control.sent_width.load(Ordering::Relaxed), 640);
    assert_eq!(control.sent_height.load(Ordering::Relaxed), 360);
    // 180 kbit/s where 640x360 wants 500: about a third of the frames.
    let encoded = control.frames_encoded.load(Ordering::Relaxed);
    assert!(encoded < 30, "{encoded}");
    source.close();
    thread.join().unwrap();
  }
}
