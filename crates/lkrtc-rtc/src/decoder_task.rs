//! One decoder per subscribed video track, on its own thread: encoded frames in (bounded; a
//! full queue drops and asks for a keyframe), decoded I420 frames out to the track's streams,
//! stamped with the publisher's capture time. Frames of a track that advertises frame metadata
//! lose their packet trailer before the decoder; its metadata goes out with the decoded frame.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lkrtc_video::VideoRotation;

use crate::encoded_stream::EncodedFrameEvent;
use crate::options::VideoCodec;
use crate::playout::{Playout, Release, RtpUnwrapper};
use crate::remote_track::RemoteVideoTrack;
use crate::stats::{InboundCounters, IngressCounts};
use crate::video_source::now_us;
use crate::video_stream::VideoFrameEvent;

/// Encoded frames waiting for the decoder; more means the decoder cannot keep up.
const QUEUE: usize = 8;

pub(crate) struct EncodedFrame {
  pub data: Vec<u8>,
  pub codec: VideoCodec,
  pub keyframe: bool,
  /// False when frames were lost right before this one.
  pub contiguous: bool,
  /// RTP timestamp (90 kHz).
  pub rtp_time: u32,
  /// The publisher's capture time (Unix µs) once its sender reports map RTP time.
  pub capture_time_us: Option<i64>,
  /// Unix µs when the frame arrived.
  pub arrival_us: i64,
  pub rotation: VideoRotation,
}

/// What to do with a frame on its way to the decoder.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
  Queue,
  /// Useless without the keyframe it depends on.
  Skip,
}

/// Keeps deltas whose references are gone away from the decoder: a new decoder starts at a
/// keyframe, and after a loss or a drop frames are skipped until the next keyframe.
struct KeyframeGate {
  waiting: bool,
}

impl Default for KeyframeGate {
  fn default() -> Self {
    // A track can start mid-stream (a subscription, a reused m-line): nothing to decode
    // against yet.
    KeyframeGate { waiting: true }
  }
}

impl KeyframeGate {
  fn admit(&mut self, keyframe: bool, contiguous: bool) -> Admit {
    if keyframe {
      self.waiting = false;
    } else if !contiguous {
      // The transport has already asked the sender for a keyframe.
      self.waiting = true;
    }
    if self.waiting {
      Admit::Skip
    } else {
      Admit::Queue
    }
  }

  /// A frame was dropped before the decoder: wait for a keyframe.
  fn dropped(&mut self) {
    self.waiting = true;
  }
}

/// While frames are skipped for want of a keyframe, the request is repeated this often (it or
/// the keyframe may be lost).
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// The transport's end of a decoder: called on the transport's task with each received frame
/// of the track (see `Pc::set_video_sink`), so it never blocks: a full queue drops the frame
/// and asks for a keyframe.
pub(crate) struct DecoderInput {
  tx: SyncSender<EncodedFrame>,
  counters: Arc<InboundCounters>,
  gate: KeyframeGate,
  /// When a keyframe was last asked for (by us or, on a loss, by the transport).
  last_request: Option<Instant>,
}

/// Keeps a decoder thread alive without feeding it: the thread ends when its input and every
/// keep-alive are gone. The engine holds one per subscription, so a transport that closes under
/// the subscription (its thread drops the input) does not end the track's streams before the
/// engine has told them why (a rejoin, whose same-sid track a stream then follows).
pub(crate) struct DecoderKeepAlive(#[allow(dead_code)] SyncSender<EncodedFrame>);

impl DecoderInput {
  pub(crate) fn keep_alive(&self) -> DecoderKeepAlive {
    DecoderKeepAlive(self.tx.clone())
  }

  /// Queues `frame` for the decoder. Returns true to ask the sender for a keyframe.
  pub(crate) fn push(&mut self, frame: EncodedFrame) -> bool {
    let now = Instant::now();
    self.counters.received();
    if !frame.contiguous {
      // The transport asks for a keyframe on every loss.
      self.last_request = Some(now);
    }
    if self.gate.admit(frame.keyframe, frame.contiguous) == Admit::Skip {
      self.counters.dropped();
      return self.request_keyframe(now);
    }
    match self.tx.try_send(frame) {
      Ok(()) => false,
      Err(TrySendError::Full(_)) => {
        self.counters.dropped();
        self.gate.dropped();
        self.last_request = Some(now);
        true
      }
      Err(TrySendError::Disconnected(_)) => false,
    }
  }

  /// What the transport counted for the track.
  pub(crate) fn ingress(&self, counts: IngressCounts) {
    self.counters.ingress(counts);
  }

  /// While frames are skipped, a keyframe request at most every [`KEYFRAME_RETRY`].
  fn request_keyframe(&mut self, now: Instant) -> bool {
    if self.last_request.is_some_and(|at| now < at + KEYFRAME_RETRY) {
      return false;
    }
    self.last_request = Some(now);
    true
  }
}

/// A received timestamp this far (µs) behind the previous one restarts the sequence.
const CLOCK_RESET_US: i64 = 1_000_000;

/// Timestamps of received frames: the publisher's capture time (Unix µs) when its sender reports
/// map RTP time, else extrapolated along the RTP clock from the last such mapping. Before the
/// first sender report the capture time is estimated as RTP time plus the smallest
/// arrival-minus-RTP offset seen so far (the least delayed frame bounds the latency best).
/// Never goes back by a little: a frame that would is stamped 1 µs after the previous one (this
/// happens when the first sender report replaces the estimate). A jump back of more than
/// [`CLOCK_RESET_US`] is the publisher's clock restarting and is passed on as is.
#[derive(Default)]
pub(crate) struct FrameClock {
  rtp: RtpUnwrapper,
  /// (unwrapped RTP, capture µs) of the latest sender-report mapping.
  anchor: Option<(i64, i64)>,
  /// Smallest arrival µs minus RTP µs seen (used until a sender report maps RTP time).
  min_offset: Option<i64>,
  last_out: Option<i64>,
}

impl FrameClock {
  pub(crate) fn timestamp_us(&mut self, rtp_time: u32, capture_time_us: Option<i64>, arrival_us: i64) -> i64 {
    let unwrapped = self.rtp.unwrap(rtp_time);
    let ts = match (capture_time_us, self.anchor) {
      (Some(capture), _) => {
        self.anchor = Some((unwrapped, capture));
        capture
      }
      (None, Some((rtp0, us0))) => us0 + (unwrapped - rtp0) * 100 / 9,
      (None, None) => {
        let rtp_us = unwrapped * 100 / 9;
        let offset = self
          .min_offset
          .map_or(arrival_us - rtp_us, |o| o.min(arrival_us - rtp_us));
        self.min_offset = Some(offset);
        rtp_us + offset
      }
    };
    let ts = match self.last_out {
      Some(last) if ts <= last && last - ts <= CLOCK_RESET_US => last + 1,
      _ => ts,
    };
    self.last_out = Some(ts);
    ts
  }
}

/// Starts the decoder thread for `track`; it ends when the input is dropped.
/// `request_keyframe` carries the decoder's own keyframe requests (after a decode error).
/// `frame_metadata`: the publication advertises packet trailers, which are stripped and reported.
pub(crate) fn spawn(
  codec: VideoCodec,
  mid: String,
  track: RemoteVideoTrack,
  frame_metadata: bool,
  request_keyframe: impl Fn() + Send + 'static,
) -> std::io::Result<DecoderInput> {
  let (tx, rx) = sync_channel(QUEUE);
  let counters = track.counters();
  std::thread::Builder::new()
    .name(format!("lkrtc-decoder-{mid}"))
    .spawn(move || run(codec, mid, rx, track, frame_metadata, request_keyframe))?;
  Ok(DecoderInput {
    tx,
    counters,
    gate: KeyframeGate::default(),
    last_request: None,
  })
}

/// Ends the track's streams when the decoder thread ends, also if it panics.
struct EndOnDrop(RemoteVideoTrack);

impl Drop for EndOnDrop {
  fn drop(&mut self) {
    self.0.end();
  }
}

fn run(
  mut codec: VideoCodec,
  mid: String,
  rx: Receiver<EncodedFrame>,
  track: RemoteVideoTrack,
  frame_metadata: bool,
  request_keyframe: impl Fn(),
) {
  let counters = track.counters();
  let track = EndOnDrop(track);
  let mut decoder = match lkrtc_codec::new_decoder(codec) {
    Ok(decoder) => decoder,
    Err(e) => {
      tracing::warn!("no {codec} decoder for {mid}: {e}");
      return;
    }
  };
  let mut clock = FrameClock::default();
  let mut playout = Playout::default();
  // Decoded frames waiting for their time (see `playout`), oldest first.
  let mut held: VecDeque<Held> = VecDeque::new();
  loop {
    let next = match held.front() {
      Some(first) => {
        let wait = first.release.at_us - now_us();
        if wait <= 0 || held.len() > MAX_HELD {
          let h = held.pop_front().expect("a held frame");
          show(&track.0, &counters, h);
          continue;
        }
        match rx.recv_timeout(Duration::from_micros(wait.min(crate::playout::MAX_TARGET_US) as u64)) {
          Ok(frame) => frame,
          Err(RecvTimeoutError::Timeout) => continue,
          Err(RecvTimeoutError::Disconnected) => break,
        }
      }
      None => match rx.recv() {
        Ok(frame) => frame,
        Err(_) => break,
      },
    };
    let mut frame = next;
    let metadata = if frame_metadata {
      crate::frame_metadata::strip_trailer(&mut frame.data)
    } else {
      None
    };
    if frame.codec != codec {
      // The sender may use any codec the m-line allows: follow it.
      match lkrtc_codec::new_decoder(frame.codec) {
        Ok(next) => {
          tracing::debug!("{mid} switched from {codec} to {}", frame.codec);
          decoder = next;
          codec = frame.codec;
        }
        Err(e) => {
          tracing::warn!("no {} decoder for {mid}: {e}", frame.codec);
          continue;
        }
      }
    }
    let timestamp_us = clock.timestamp_us(frame.rtp_time, frame.capture_time_us, frame.arrival_us);
    if track.0.has_encoded_streams() {
      // Encoded frames go on as they arrive: a relay has its own subscribers' buffers.
      let event = EncodedFrameEvent {
        data: Arc::new(frame.data.clone()),
        codec: frame.codec,
        keyframe: frame.keyframe,
        timestamp_us,
        rtp_timestamp: frame.rtp_time,
        rotation: frame.rotation,
        metadata,
      };
      if track.0.deliver_encoded(&event) {
        request_keyframe();
      }
    }
    match decoder.decode(&frame.data) {
      Ok(Some(decoded)) => {
        let release = playout.on_frame(frame.rtp_time, frame.arrival_us);
        held.push_back(Held {
          event: VideoFrameEvent {
            frame: Arc::new(decoded),
            timestamp_us,
            rotation: frame.rotation,
            metadata,
          },
          keyframe: frame.keyframe,
          decoder: lkrtc_codec::library_name(codec),
          arrival_us: frame.arrival_us,
          release,
        });
      }
      Ok(None) => {}
      Err(e) => {
        tracing::debug!("decode error on {mid}: {e}; asking for a keyframe");
        request_keyframe();
      }
    }
  }
}

/// More decoded frames than this waiting for their time are shown at once, oldest first (the
/// target bounds the wait, this the memory at any frame rate).
const MAX_HELD: usize = 16;

/// A decoded frame waiting for its time.
struct Held {
  event: VideoFrameEvent,
  keyframe: bool,
  decoder: &'static str,
  arrival_us: i64,
  release: Release,
}

/// Hands a frame to the track's streams and counts it as shown.
fn show(track: &RemoteVideoTrack, counters: &InboundCounters, held: Held) {
  let frame = &held.event.frame;
  let waited_us = (now_us() - held.arrival_us).max(0);
  counters.decoded(
    Instant::now(),
    frame.width(),
    frame.height(),
    held.keyframe,
    held.decoder,
  );
  counters.played_out(waited_us, held.release.target_us);
  track.deliver(held.event);
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::video_stream::{VideoStream, VideoStreamOptions};
  use lkrtc_video::{VideoBufferType, VideoFrame};

  fn encoded(codec: VideoCodec, n: usize) -> Vec<(Vec<u8>, bool)> {
    let config = lkrtc_codec::EncoderConfig {
      screen_content: false,
      adaptive_speed: false,
      width: 64,
      height: 64,
      bitrate_bps: 200_000,
      max_framerate: 30.0,
    };
    let mut encoder = lkrtc_codec::new_encoder(codec, &config).unwrap();
    let frame = VideoFrame::new_zeroed(64, 64, VideoBufferType::I420).unwrap();
    (0..n)
      .filter_map(|i| encoder.encode(&frame.as_ref(), i as i64 * 33_333, i == 0).unwrap())
      .map(|e| (e.data, e.keyframe))
      .collect()
  }

  fn frame(codec: VideoCodec, data: Vec<u8>, keyframe: bool, n: u32) -> EncodedFrame {
    EncodedFrame {
      data,
      codec,
      keyframe,
      contiguous: true,
      rtp_time: n * 3000,
      capture_time_us: Some(1_000_000 + i64::from(n) * 33_333),
      arrival_us: 0,
      rotation: VideoRotation::Rotation90,
    }
  }

  async fn decoder(codec: VideoCodec) -> (DecoderInput, RemoteVideoTrack) {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    let input = spawn(codec, "0".into(), track.clone(), true, || {}).unwrap();
    (input, track)
  }

  #[tokio::test]
  async fn decoded_frames_reach_the_stream_with_capture_time_and_rotation() {
    let (mut input, track) = decoder(VideoCodec::Vp8).await;
    let mut stream = VideoStream::new(
      &track,
      VideoStreamOptions {
        capacity: 0,
        format: None,
        size: None,
      },
    );
    for (n, (data, keyframe)) in encoded(VideoCodec::Vp8, 3).into_iter().enumerate() {
      input.push(frame(VideoCodec::Vp8, data, keyframe, n as u32));
    }
    let first = stream.next().await.unwrap();
    assert_eq!((first.frame.width(), first.frame.height()), (64, 64));
    assert_eq!(first.frame.buffer_type(), VideoBufferType::I420);
    assert_eq!(
      (first.timestamp_us, first.rotation),
      (1_000_000, VideoRotation::Rotation90)
    );
    drop(input);
  }

  #[tokio::test]
  async fn the_decoder_follows_the_frames_codec() {
    let (mut input, track) = decoder(VideoCodec::Vp8).await;
    let mut stream = VideoStream::new(
      &track,
      VideoStreamOptions {
        capacity: 0,
        format: None,
        size: None,
      },
    );
    for (n, (data, keyframe)) in encoded(VideoCodec::H264, 3).into_iter().enumerate() {
      input.push(frame(VideoCodec::H264, data, keyframe, n as u32));
    }
    let first = stream.next().await.unwrap();
    assert_eq!((first.frame.width(), first.frame.height()), (64, 64));
  }

  /// `n` frames of a `size`x`size` picture of luma `y` (grey), encoded from a keyframe.
  fn encoded_grey(codec: VideoCodec, size: u32, y: u8, n: usize) -> Vec<(Vec<u8>, bool)> {
    let config = lkrtc_codec::EncoderConfig {
      screen_content: false,
      adaptive_speed: false,
      width: size,
      height: size,
      bitrate_bps: 300_000,
      max_framerate: 30.0,
    };
    let mut encoder = lkrtc_codec::new_encoder(codec, &config).unwrap();
    let mut frame = VideoFrame::new_zeroed(size, size, VideoBufferType::I420).unwrap();
    let luma = (size * size) as usize;
    frame.data_mut()[..luma].fill(y);
    frame.data_mut()[luma..].fill(128);
    (0..n)
      .filter_map(|i| encoder.encode(&frame.as_ref(), i as i64 * 33_333, i == 0).unwrap())
      .map(|e| (e.data, e.keyframe))
      .collect()
  }

  /// A simulcast subscriber switching layers: the decoder gets a keyframe of another size
  /// mid-stream, and a converting stream follows with the new size and the right picture.
  #[tokio::test]
  async fn a_stream_with_a_format_follows_a_size_change_mid_stream() {
    for codec in [VideoCodec::Vp8, VideoCodec::H264] {
      let (mut input, track) = decoder(codec).await;
      let mut stream = VideoStream::new(
        &track,
        VideoStreamOptions {
          capacity: 0,
          format: Some(VideoBufferType::RGBA),
          size: None,
        },
      );
      let big = encoded_grey(codec, 64, 200, 3);
      let small = encoded_grey(codec, 32, 60, 3);
      let (n_big, n_small) = (big.len(), small.len());
      for (n, (data, keyframe)) in big.into_iter().chain(small).enumerate() {
        input.push(frame(codec, data, keyframe, n as u32));
      }
      let mut seen = Vec::new();
      for _ in 0..n_big + n_small {
        let event = stream.next().await.expect("a frame");
        let (w, h) = (event.frame.width(), event.frame.height());
        let rgba = event.frame.data();
        assert_eq!(rgba.len(), (w * h * 4) as usize, "{codec}: a whole RGBA picture");
        // Limited-range luma 200 is about 216 in RGB, 60 about 51: every pixel of the picture.
        let expected: i32 = if w == 64 { 216 } else { 51 };
        let worst = rgba
          .chunks(4)
          .map(|p| (i32::from(p[0]) - expected).abs())
          .max()
          .unwrap();
        assert!(worst <= 12, "{codec}: {w}x{h} off by {worst}");
        seen.push((w, h));
      }
      let mut expected = vec![(64, 64); n_big];
      expected.extend(vec![(32, 32); n_small]);
      assert_eq!(seen, expected, "{codec}");
    }
  }

  /// Frames with a packet trailer decode as the same picture in every codec, and the stream
  /// reports each frame's metadata; frames without one report none.
  #[tokio::test]
  async fn trailers_are_stripped_before_decoding_and_reported_per_frame() {
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
      let (mut input, track) = decoder(codec).await;
      let mut stream = VideoStream::new(
        &track,
        VideoStreamOptions {
          capacity: 0,
          format: None,
          size: None,
        },
      );
      let frames = encoded_grey(codec, 32, 180, 4);
      let n = frames.len();
      for (i, (mut data, keyframe)) in frames.into_iter().enumerate() {
        if i != 2 {
          let metadata = crate::FrameMetadata {
            user_timestamp: Some(1_000_000 + i as u64),
            frame_id: Some(i as u32 + 1),
          };
          crate::frame_metadata::append_trailer(&mut data, &metadata);
        }
        input.push(frame(codec, data, keyframe, i as u32));
      }
      for i in 0..n {
        let event = stream.next().await.expect("a frame");
        let expected = (i != 2).then_some(crate::FrameMetadata {
          user_timestamp: Some(1_000_000 + i as u64),
          frame_id: Some(i as u32 + 1),
        });
        assert_eq!(event.metadata, expected, "{codec} frame {i}");
        let luma = &event.frame.data()[..32 * 32];
        let worst = luma.iter().map(|&y| (i32::from(y) - 180).abs()).max().unwrap();
        assert!(worst <= 8, "{codec} frame {i}: luma off by {worst}");
      }
    }
  }

  /// A trailer left on the frame (a receiver that does not strip it, from a server that did
  /// not either) is harmless to VP8 and H.264, but libvpx's VP9 decoder takes the bytes after a
  /// frame for another frame and fails. So receivers strip it whenever the publication
  /// advertises it, and the server strips it for the others.
  #[tokio::test]
  async fn vp8_and_h264_decode_with_a_trailer_left_on_the_frame_but_not_vp9() {
    check_decodes_with_tail(VideoCodec::Vp8, false, 0).await;
    check_decodes_with_tail(VideoCodec::H264, false, 0).await;
    {
      let codec = VideoCodec::Vp9;
      let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
      let mut input = spawn(codec, "0".into(), track.clone(), false, || {}).unwrap();
      let mut stream = VideoStream::new(
        &track,
        VideoStreamOptions {
          capacity: 0,
          format: None,
          size: None,
        },
      );
      let frames = encoded_grey(codec, 32, 70, 4);
      let n = frames.len();
      for (i, (mut data, keyframe)) in frames.into_iter().enumerate() {
        let metadata = crate::FrameMetadata {
          user_timestamp: Some(7),
          frame_id: Some(8),
        };
        crate::frame_metadata::append_trailer(&mut data, &metadata);
        input.push(frame(codec, data, keyframe, i as u32));
      }
      drop(input);
      let mut decoded = 0;
      while stream.next().await.is_some() {
        decoded += 1;
      }
      assert!(
        decoded < n,
        "{codec}: {decoded} of {n} frames decoded with a trailer left on"
      );
    }
  }

  /// The zeros the transport may put before a trailer (to keep it in the last packet) stay
  /// after it is stripped: every decoder ignores them.
  #[tokio::test]
  async fn decoders_ignore_the_zeros_before_a_stripped_trailer() {
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
      check_decodes_with_tail(codec, true, 20).await;
    }
  }

  /// Frames of `codec` with `zeros` zero bytes then a trailer decode as the picture; the
  /// metadata is reported when `strip`.
  async fn check_decodes_with_tail(codec: VideoCodec, strip: bool, zeros: usize) {
    let metadata_of = |i: usize| crate::FrameMetadata {
      user_timestamp: Some(1_764_000_000_000_000 + i as u64 * 33_333),
      frame_id: Some(i as u32 + 1),
    };
    {
      let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
      let mut input = spawn(codec, "0".into(), track.clone(), strip, || {}).unwrap();
      let mut stream = VideoStream::new(
        &track,
        VideoStreamOptions {
          capacity: 0,
          format: None,
          size: None,
        },
      );
      let frames = encoded_grey(codec, 32, 70, 4);
      let n = frames.len();
      for (i, (mut data, keyframe)) in frames.into_iter().enumerate() {
        let metadata = metadata_of(i);
        data.resize(data.len() + zeros, 0);
        crate::frame_metadata::append_trailer(&mut data, &metadata);
        input.push(frame(codec, data, keyframe, i as u32));
      }
      for i in 0..n {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
          .await
          .unwrap_or_else(|_| panic!("{codec} frame {i} was not decoded"))
          .expect("a frame");
        let expected = strip.then(|| metadata_of(i));
        assert_eq!(event.metadata, expected, "{codec} frame {i}");
        let luma = &event.frame.data()[..32 * 32];
        let worst = luma.iter().map(|&y| (i32::from(y) - 70).abs()).max().unwrap();
        assert!(worst <= 8, "{codec} frame {i}: luma off by {worst}");
      }
    }
  }

  #[tokio::test]
  async fn dropping_the_input_ends_the_streams() {
    let (input, track) = decoder(VideoCodec::Vp8).await;
    let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
    drop(input);
    assert!(stream.next().await.is_none());
    assert!(track.is_ended());
  }

  #[tokio::test]
  async fn the_streams_end_when_the_input_and_the_keep_alive_are_both_gone() {
    let (input, track) = decoder(VideoCodec::Vp8).await;
    let keep_alive = input.keep_alive();
    let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
    drop(input);
    let early = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(early.is_err(), "the stream ended while a keep-alive held the decoder");
    assert!(!track.is_ended());
    drop(keep_alive);
    assert!(stream.next().await.is_none());
    assert!(track.is_ended());
  }

  #[test]
  fn a_full_queue_drops_and_asks_for_a_keyframe_once_per_retry() {
    let (tx, _rx) = sync_channel(1);
    let counters = Arc::new(InboundCounters::default());
    let mut input = DecoderInput {
      tx,
      counters: counters.clone(),
      gate: KeyframeGate::default(),
      last_request: None,
    };
    let key = |n| frame(VideoCodec::Vp8, vec![1], true, n);
    let delta = |n| frame(VideoCodec::Vp8, vec![2], false, n);
    assert!(!input.push(key(0)), "queued");
    assert!(input.push(delta(1)), "the queue is full: dropped, keyframe asked for");
    assert!(!input.push(delta(2)), "skipped without asking again so soon");
    assert!(!input.push(delta(3)));
    let stats = counters.snapshot(Instant::now());
    assert_eq!((stats.frames_received, stats.frames_dropped), (4, 3));
  }

  #[test]
  fn a_delta_before_any_keyframe_asks_for_one() {
    let (tx, _rx) = sync_channel(4);
    let mut input = DecoderInput {
      tx,
      counters: Arc::default(),
      gate: KeyframeGate::default(),
      last_request: None,
    };
    assert!(input.push(frame(VideoCodec::Vp8, vec![2], false, 0)));
  }

  #[test]
  fn a_loss_skips_deltas_until_the_next_keyframe() {
    let mut gate = KeyframeGate::default();
    assert_eq!(gate.admit(true, true), Admit::Queue);
    assert_eq!(gate.admit(false, true), Admit::Queue);
    assert_eq!(gate.admit(false, false), Admit::Skip);
    assert_eq!(gate.admit(false, true), Admit::Skip);
    assert_eq!(gate.admit(true, false), Admit::Queue);
    assert_eq!(gate.admit(false, true), Admit::Queue);
  }

  #[test]
  fn a_new_decoder_starts_at_a_keyframe() {
    let mut gate = KeyframeGate::default();
    assert_eq!(gate.admit(false, true), Admit::Skip);
    assert_eq!(gate.admit(true, true), Admit::Queue);
    assert_eq!(gate.admit(false, true), Admit::Queue);
  }

  #[test]
  fn a_drop_skips_deltas_until_the_next_keyframe() {
    let mut gate = KeyframeGate::default();
    assert_eq!(gate.admit(true, true), Admit::Queue);
    gate.dropped();
    assert_eq!(gate.admit(false, true), Admit::Skip);
    assert_eq!(gate.admit(true, true), Admit::Queue);
  }

  #[test]
  fn sender_capture_times_are_used_as_given() {
    let mut clock = FrameClock::default();
    assert_eq!(clock.timestamp_us(1000, Some(5_000_000), 9_000_000), 5_000_000);
    assert_eq!(clock.timestamp_us(4000, Some(5_033_333), 9_000_000), 5_033_333);
  }

  #[test]
  fn before_a_sender_report_arrival_jitter_does_not_show() {
    let mut clock = FrameClock::default();
    assert_eq!(clock.timestamp_us(90_000, None, 7_000_000), 7_000_000);
    // Arrival jitter does not show: 3000 ticks = 33 333 µs later.
    assert_eq!(clock.timestamp_us(93_000, None, 7_050_000), 7_033_333);
  }

  #[test]
  fn before_a_sender_report_the_least_delayed_frame_sets_the_estimate() {
    let mut clock = FrameClock::default();
    assert_eq!(clock.timestamp_us(90_000, None, 7_100_000), 7_100_000);
    // 33 333 µs of RTP later but only 3 333 µs later in arrival: the first frame was late.
    assert_eq!(clock.timestamp_us(93_000, None, 7_103_333), 7_103_333);
    assert_eq!(clock.timestamp_us(96_000, None, 7_200_000), 7_136_666);
  }

  #[test]
  fn after_a_sender_report_missing_mappings_extrapolate_from_it() {
    let mut clock = FrameClock::default();
    clock.timestamp_us(90_000, Some(2_000_000), 9_000_000);
    assert_eq!(clock.timestamp_us(99_000, None, 9_500_000), 2_100_000);
  }

  #[test]
  fn rtp_wrap_does_not_jump() {
    let mut clock = FrameClock::default();
    clock.timestamp_us(u32::MAX - 8, None, 1_000_000);
    assert_eq!(clock.timestamp_us(8_991, None, 1_100_000), 1_100_000);
  }

  #[test]
  fn a_publisher_clock_restart_is_passed_on() {
    let mut clock = FrameClock::default();
    assert_eq!(clock.timestamp_us(90_000, Some(50_000_000), 0), 50_000_000);
    assert_eq!(clock.timestamp_us(93_000, Some(2_000_000), 0), 2_000_000);
  }

  #[test]
  fn timestamps_never_go_back() {
    let mut clock = FrameClock::default();
    assert_eq!(clock.timestamp_us(90_000, None, 7_000_000), 7_000_000);
    // The first sender report says the frame was captured 40 ms before it arrived.
    assert_eq!(clock.timestamp_us(93_000, Some(6_993_333), 7_050_000), 7_000_001);
    assert_eq!(clock.timestamp_us(96_000, Some(7_026_666), 7_080_000), 7_026_666);
  }
}
