//! Receiving video: a [`VideoStream`] yields the decoded frames of one remote track through a
//! bounded queue that drops the oldest frame when full (a slow reader sees fresh frames, never a
//! growing backlog). Frames arrive already converted to the stream's format, off the caller's
//! thread, from the track's decoder. A stream on a local track yields the frames as captured
//! (converted on the capturing thread), for previews and recorders.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::local_track::LocalVideoTrack;
use crate::remote_track::RemoteVideoTrack;
use crate::stream_queue::StreamQueue;
pub use crate::stream_queue::{VideoFrameEvent, VideoStreamOptions};
use crate::video_source::VideoSource;
use crate::{RtcError, RtcResult};

/// The decoded frames of one remote video track. Ends (`next()` gives `None`) when closed, when
/// the track is unsubscribed or when the room disconnects.
pub struct VideoStream {
  queue: Arc<StreamQueue>,
  track: Option<RemoteVideoTrack>,
  source: Option<VideoSource>,
}

impl VideoStream {
  /// A stream of `track`'s frames from now on; it ends when the track does.
  pub fn new(track: &RemoteVideoTrack, options: VideoStreamOptions) -> Self {
    let queue = StreamQueue::new(options);
    track.attach(queue.clone());
    Self {
      queue,
      track: Some(track.clone()),
      source: None,
    }
  }

  /// A stream of the frames captured on `track`'s source from now on, published or not; it
  /// ends when the source is closed. `options.size` does not apply (frames come as captured).
  /// A track over an [`crate::EncodedVideoSource`] has no pictures to show: an error.
  pub fn from_local(track: &LocalVideoTrack, options: VideoStreamOptions) -> RtcResult<Self> {
    if let Some(feed) = track.source().encoded_feed() {
      return Err(RtcError::InvalidArgument {
        name: "track",
        reason: format!(
          "the track publishes pre-encoded {} frames, which lkrtc does not decode; expected a track over a VideoSource",
          feed.codec
        ),
      });
    }
    let queue = StreamQueue::new(VideoStreamOptions { size: None, ..options });
    track.source().tap(queue.clone());
    Ok(Self {
      queue,
      track: None,
      source: Some(track.source().clone()),
    })
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
    if let Some(source) = self.source.take() {
      source.untap(&self.queue);
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
      metadata: None,
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
      source: None,
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
      source: None,
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

  fn rgba(width: u32, height: u32, seed: u8) -> VideoFrame {
    let mut frame = VideoFrame::new_zeroed(width, height, VideoBufferType::RGBA).unwrap();
    for (i, b) in frame.data_mut().iter_mut().enumerate() {
      *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    frame
  }

  fn local_track(width: u32, height: u32) -> LocalVideoTrack {
    let source = VideoSource::new(width, height, Default::default()).unwrap();
    LocalVideoTrack::create_video_track("preview", &source)
  }

  const METADATA: crate::FrameMetadata = crate::FrameMetadata {
    user_timestamp: Some(99),
    frame_id: Some(3),
  };

  #[tokio::test]
  async fn a_local_stream_yields_the_frames_as_captured_in_their_own_format() {
    let track = local_track(6, 4);
    let mut stream = VideoStream::from_local(
      &track,
      VideoStreamOptions {
        capacity: 0,
        format: Some(VideoBufferType::RGBA),
        size: None,
      },
    )
    .unwrap();
    let frame = rgba(6, 4, 3);
    let view = VideoFrame::new(6, 4, VideoBufferType::RGBA, frame.data()).unwrap();
    track
      .source()
      .capture_frame_with_metadata(&view, 1234, VideoRotation::Rotation90, Some(METADATA))
      .unwrap();
    let event = stream.next().await.unwrap();
    assert_eq!(event.frame.data(), frame.data());
    assert_eq!(event.timestamp_us, 1234);
    assert_eq!(event.rotation, VideoRotation::Rotation90);
    assert_eq!(event.metadata, Some(METADATA));
  }

  #[tokio::test]
  async fn a_local_stream_in_another_format_gets_the_frame_converted() {
    let track = local_track(8, 8);
    let options = |format| VideoStreamOptions {
      capacity: 0,
      format: Some(format),
      size: None,
    };
    let mut i420 = VideoStream::from_local(&track, options(VideoBufferType::I420)).unwrap();
    let mut nv12 = VideoStream::from_local(&track, options(VideoBufferType::NV12)).unwrap();
    let frame = rgba(8, 8, 0);
    let view = VideoFrame::new(8, 8, VideoBufferType::RGBA, frame.data()).unwrap();
    track
      .source()
      .capture_frame(&view, 5, VideoRotation::Rotation0)
      .unwrap();
    let expected = lkrtc_video::convert(&view, VideoBufferType::I420, false).unwrap();
    assert_eq!(i420.next().await.unwrap().frame.data(), expected.data());
    let got = nv12.next().await.unwrap().frame;
    assert_eq!(got.buffer_type(), VideoBufferType::NV12);
    assert_eq!(got.data()[..64], expected.data()[..64]);
  }

  #[tokio::test]
  async fn a_local_stream_ends_when_its_source_closes_and_a_closed_one_gets_nothing() {
    let track = local_track(4, 4);
    let mut open = VideoStream::from_local(&track, VideoStreamOptions::default()).unwrap();
    let mut closed = VideoStream::from_local(&track, VideoStreamOptions::default()).unwrap();
    closed.close();
    let frame = rgba(4, 4, 1);
    let view = VideoFrame::new(4, 4, VideoBufferType::RGBA, frame.data()).unwrap();
    track
      .source()
      .capture_frame(&view, 7, VideoRotation::Rotation0)
      .unwrap();
    assert!(closed.next().await.is_none());
    track.source().close();
    assert_eq!(open.next().await.unwrap().timestamp_us, 7);
    assert!(open.next().await.is_none());
    let late = VideoStream::from_local(&track, VideoStreamOptions::default())
      .unwrap()
      .next()
      .await;
    assert!(late.is_none());
  }
}
