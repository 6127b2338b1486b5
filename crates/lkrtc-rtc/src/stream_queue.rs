//! The queue between a remote track's decoder and one [`crate::VideoStream`]: bounded (the
//! oldest frame gives way when full), closed when the track ends, drained by the stream.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};
use tokio::sync::Notify;

/// One received frame.
#[derive(Debug, Clone)]
pub struct VideoFrameEvent {
  /// The frame, in the stream's format.
  pub frame: Arc<VideoFrame<Vec<u8>>>,
  /// Capture time, Unix microseconds: the publisher's `capture_frame` timestamp once its RTCP
  /// sender reports map RTP time (within a few ms, typically from 1-3 s after subscribing);
  /// before that, estimated from the RTP clock and the earliest arrival. Increasing.
  /// Publishers whose timestamps are not Unix time are anchored to Unix time by lkrtc.
  pub timestamp_us: i64,
  /// How the frame is to be rotated for display.
  pub rotation: VideoRotation,
  /// What the publisher attached to the frame (LiveKit's packet trailer); `None` when the
  /// frame carried none.
  pub metadata: Option<crate::FrameMetadata>,
}

/// How a stream queues and formats frames.
#[derive(Debug, Clone, Copy)]
pub struct VideoStreamOptions {
  /// Frames kept when the reader falls behind (the oldest are dropped); 0 = unbounded.
  pub capacity: usize,
  /// Output format; `None` = I420 as decoded.
  pub format: Option<VideoBufferType>,
  /// The picture size (width, height) the reader wants. With the room's adaptive stream on,
  /// lkrtc asks the server for the smallest layer at least this big (the largest any open
  /// stream of the track wants); `None` wants the full size. Ignored otherwise. Frames come
  /// as decoded: their size is the layer's, not this one.
  pub size: Option<(u32, u32)>,
}

impl VideoStreamOptions {
  /// The largest width or height [`VideoStreamOptions::size`] takes.
  pub const MAX_SIZE: u32 = 16_384;

  /// `size` if both sides are from 1 to [`VideoStreamOptions::MAX_SIZE`], else
  /// `ERR_INVALID_ARGUMENT` naming the side.
  pub fn check_size(width: u32, height: u32) -> crate::RtcResult<(u32, u32)> {
    for (name, value) in [("width", width), ("height", height)] {
      if !(1..=Self::MAX_SIZE).contains(&value) {
        return Err(crate::RtcError::InvalidArgument {
          name,
          reason: format!("expected an integer from 1 to {}, got {value}", Self::MAX_SIZE),
        });
      }
    }
    Ok((width, height))
  }
}

impl Default for VideoStreamOptions {
  fn default() -> Self {
    Self {
      capacity: 1,
      format: None,
      size: None,
    }
  }
}

/// The producer side of a stream, held by the track's decoder.
pub(crate) struct StreamQueue {
  items: Mutex<VecDeque<VideoFrameEvent>>,
  pub(crate) notify: Notify,
  closed: AtomicBool,
  capacity: usize,
  pub(crate) format: VideoBufferType,
  /// The size its reader wants (adaptive stream).
  pub(crate) size: Option<(u32, u32)>,
  pub(crate) dropped: AtomicU64,
}

impl StreamQueue {
  pub(crate) fn new(options: VideoStreamOptions) -> Arc<Self> {
    Arc::new(Self {
      items: Mutex::new(VecDeque::new()),
      notify: Notify::new(),
      closed: AtomicBool::new(false),
      capacity: options.capacity,
      format: options.format.unwrap_or(VideoBufferType::I420),
      size: options.size,
      dropped: AtomicU64::new(0),
    })
  }

  pub(crate) fn push(&self, event: VideoFrameEvent) {
    if self.is_closed() {
      return;
    }
    {
      let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
      if self.capacity > 0 {
        while items.len() >= self.capacity {
          items.pop_front();
          self.dropped.fetch_add(1, Ordering::Relaxed);
        }
      }
      items.push_back(event);
    }
    self.notify.notify_one();
  }

  pub(crate) fn close(&self) {
    self.closed.store(true, Ordering::Release);
    self.notify.notify_waiters();
    self.notify.notify_one();
  }

  pub(crate) fn is_closed(&self) -> bool {
    self.closed.load(Ordering::Acquire)
  }

  pub(crate) fn pop(&self) -> Option<VideoFrameEvent> {
    self.items.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
  }
}

/// Delivers one frame to every queue in the queue's format, converting once per format however
/// many queues want it. `shared` is the frame itself when the caller holds it in an `Arc` (queues
/// of its format then share it); without it they get a copy.
pub(crate) fn deliver<D: AsRef<[u8]>>(
  queues: &[Arc<StreamQueue>],
  frame: &VideoFrame<D>,
  shared: Option<&Arc<VideoFrame<Vec<u8>>>>,
  timestamp_us: i64,
  rotation: VideoRotation,
  metadata: Option<crate::FrameMetadata>,
) {
  let event = |frame: Arc<VideoFrame<Vec<u8>>>| VideoFrameEvent {
    frame,
    timestamp_us,
    rotation,
    metadata,
  };
  let mut done: Vec<Arc<VideoFrame<Vec<u8>>>> = shared.into_iter().cloned().collect();
  for queue in queues {
    if let Some(f) = done.iter().find(|f| f.buffer_type() == queue.format) {
      queue.push(event(f.clone()));
      continue;
    }
    let made = if queue.format == frame.buffer_type() {
      VideoFrame::new(
        frame.width(),
        frame.height(),
        frame.buffer_type(),
        frame.data().to_vec(),
      )
    } else {
      lkrtc_video::convert(frame, queue.format, false)
    };
    match made {
      Ok(f) => {
        let f = Arc::new(f);
        queue.push(event(f.clone()));
        done.push(f);
      }
      Err(e) => tracing::warn!("cannot convert a frame to {}: {e}", queue.format),
    }
  }
}
