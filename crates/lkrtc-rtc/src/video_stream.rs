//! Receiving video: a [`VideoStream`] yields the decoded frames of one remote track through a
//! bounded queue that drops the oldest frame when full (a slow reader sees fresh frames, never a
//! growing backlog). Frames arrive already converted to the stream's format, off the caller's
//! thread, from the track's decoder.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};
use tokio::sync::Notify;

use crate::remote_track::RemoteVideoTrack;

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
}

/// How a stream queues and formats frames.
#[derive(Debug, Clone, Copy)]
pub struct VideoStreamOptions {
  /// Frames kept when the reader falls behind (the oldest are dropped); 0 = unbounded.
  pub capacity: usize,
  /// Output format; `None` = I420 as decoded.
  pub format: Option<VideoBufferType>,
}

impl Default for VideoStreamOptions {
  fn default() -> Self {
    Self {
      capacity: 1,
      format: None,
    }
  }
}

/// The producer side of a stream, held by the track's decoder.
pub(crate) struct StreamQueue {
  items: Mutex<VecDeque<VideoFrameEvent>>,
  notify: Notify,
  closed: AtomicBool,
  capacity: usize,
  pub(crate) format: VideoBufferType,
  dropped: AtomicU64,
}

impl StreamQueue {
  pub(crate) fn new(options: VideoStreamOptions) -> Arc<Self> {
    Arc::new(Self {
      items: Mutex::new(VecDeque::new()),
      notify: Notify::new(),
      closed: AtomicBool::new(false),
      capacity: options.capacity,
      format: options.format.unwrap_or(VideoBufferType::I420),
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

  fn pop(&self) -> Option<VideoFrameEvent> {
    self.items.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
  }
}

/// The decoded frames of one remote video track. Ends (`next()` gives `None`) when closed, when
/// the track is unsubscribed or when the room disconnects.
pub struct VideoStream {
  queue: Arc<StreamQueue>,
  track: Option<RemoteVideoTrack>,
}

impl VideoStream {
  /// A stream of `track`'s frames from now on; it ends when the track does.
  pub fn new(track: &RemoteVideoTrack, options: VideoStreamOptions) -> Self {
    let queue = StreamQueue::new(options);
    track.attach(queue.clone());
    Self {
      queue,
      track: Some(track.clone()),
    }
  }

  /// The next frame, waiting for one; `None` once the stream has ended. Frames queued before
  /// the end are still delivered.
  pub async fn next(&mut self) -> Option<VideoFrameEvent> {
    loop {
      let notified = self.queue.notify.notified();
      if let Some(event) = self.queue.pop() {
        return Some(event);
      }
      if self.queue.is_closed() {
        return None;
      }
      notified.await;
    }
  }

  /// Frames dropped because the reader was slower than the track.
  pub fn dropped_frames(&self) -> u64 {
    self.queue.dropped.load(Ordering::Relaxed)
  }

  /// Ends the stream: `next` returns `None` from now on.
  pub fn close(&mut self) {
    self.queue.close();
    if let Some(track) = self.track.take() {
      track.detach(&self.queue);
    }
  }
}

impl Drop for VideoStream {
  fn drop(&mut self) {
    self.close();
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn event(n: u8) -> VideoFrameEvent {
    let mut frame = VideoFrame::new_zeroed(2, 2, VideoBufferType::I420).unwrap();
    frame.data_mut()[0] = n;
    VideoFrameEvent {
      frame: Arc::new(frame),
      timestamp_us: i64::from(n),
      rotation: VideoRotation::Rotation0,
    }
  }

  #[tokio::test]
  async fn a_full_queue_drops_the_oldest_frames() {
    let queue = StreamQueue::new(VideoStreamOptions {
      capacity: 2,
      format: None,
    });
    let mut stream = VideoStream {
      queue: queue.clone(),
      track: None,
    };
    for n in 1..=5 {
      queue.push(event(n));
    }
    assert_eq!(stream.next().await.unwrap().timestamp_us, 4);
    assert_eq!(stream.next().await.unwrap().timestamp_us, 5);
    assert_eq!(stream.dropped_frames(), 3);
    queue.close();
    assert!(stream.next().await.is_none());
  }

  #[tokio::test]
  async fn next_waits_for_a_frame_from_another_thread() {
    let queue = StreamQueue::new(VideoStreamOptions {
      capacity: 0,
      format: None,
    });
    let mut stream = VideoStream {
      queue: queue.clone(),
      track: None,
    };
    let producer = std::thread::spawn(move || {
      std::thread::sleep(std::time::Duration::from_millis(20));
      queue.push(event(9));
      queue.close();
    });
    assert_eq!(stream.next().await.unwrap().timestamp_us, 9);
    assert!(stream.next().await.is_none());
    producer.join().unwrap();
  }
}
