//! One decoder per subscribed video track, on its own thread: encoded frames in (bounded; a
//! full queue drops and asks for a keyframe), decoded I420 frames out to the track's streams.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use lkrtc_video::VideoRotation;

use crate::options::VideoCodec;
use crate::pc::Pc;
use crate::remote_track::RemoteVideoTrack;
use crate::video_source::now_us;
use crate::video_stream::VideoFrameEvent;

pub(crate) struct EncodedFrame {
  pub data: Vec<u8>,
  pub keyframe: bool,
  pub capture_time_us: i64,
  pub rotation: VideoRotation,
}

/// The engine's end of a decoder.
pub(crate) struct DecoderInput {
  tx: SyncSender<EncodedFrame>,
  /// Set after a drop: deltas are useless until the next keyframe.
  waiting_for_keyframe: bool,
  mid: String,
  pc: Pc,
}

impl DecoderInput {
  pub(crate) fn push(&mut self, frame: EncodedFrame) {
    if self.waiting_for_keyframe && !frame.keyframe {
      return;
    }
    self.waiting_for_keyframe = false;
    match self.tx.try_send(frame) {
      Ok(()) => {}
      Err(TrySendError::Full(_)) => {
        self.waiting_for_keyframe = true;
        self.pc.request_keyframe(&self.mid);
      }
      Err(TrySendError::Disconnected(_)) => {}
    }
  }
}

/// Starts the decoder thread for `track`; it ends when the input is dropped.
pub(crate) fn spawn(codec: VideoCodec, mid: String, track: RemoteVideoTrack, pc: Pc) -> std::io::Result<DecoderInput> {
  let (tx, rx) = sync_channel(8);
  let thread_pc = pc.clone();
  let thread_mid = mid.clone();
  std::thread::Builder::new()
    .name(format!("lkrtc-decoder-{mid}"))
    .spawn(move || run(codec, thread_mid, rx, track, thread_pc))?;
  Ok(DecoderInput {
    tx,
    waiting_for_keyframe: false,
    mid,
    pc,
  })
}

fn run(codec: VideoCodec, mid: String, rx: Receiver<EncodedFrame>, track: RemoteVideoTrack, pc: Pc) {
  let mut decoder = match lkrtc_codec::new_decoder(codec) {
    Ok(decoder) => decoder,
    Err(e) => {
      log::warn!("no {codec} decoder for {mid}: {e}");
      track.end();
      return;
    }
  };
  while let Ok(frame) = rx.recv() {
    match decoder.decode(&frame.data) {
      Ok(Some(decoded)) => {
        let timestamp_us = if frame.capture_time_us > 0 {
          frame.capture_time_us
        } else {
          now_us()
        };
        track.deliver(VideoFrameEvent {
          frame: Arc::new(decoded),
          timestamp_us,
          rotation: frame.rotation,
        });
      }
      Ok(None) => {}
      Err(e) => {
        log::debug!("decode error on {mid}: {e}; asking for a keyframe");
        pc.request_keyframe(&mid);
      }
    }
  }
  track.end();
}
