//! Receiving video: a [`VideoStream`] yields the decoded frames of one remote track through a
//! bounded queue that drops the oldest frame when full (a slow reader sees fresh frames, never a
//! growing backlog). Frames arrive already converted to the stream's format, off the caller's
//! thread, from the track's decoder.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::remote_track::RemoteVideoTrack;
use crate::stream_queue::StreamQueue;
pub use crate::stream_queue::{VideoFrameEvent, VideoStreamOptions};

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
  use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};

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
      size: None,
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
      size: None,
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
