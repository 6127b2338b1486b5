//! Outgoing data-channel messages waiting for SCTP to take them. str0m refuses a write larger
//! than the association's free send buffer (`Channel::write` returns false), so a message that
//! does not fit now waits here, in order per channel, and goes out as the buffer drains
//! (`ChannelBufferedAmountLow`). The wait is bounded in bytes: past the bound a send is refused
//! with [`TransportError::DataBacklog`] rather than queued without end or dropped unseen.

use std::collections::VecDeque;

use crate::TransportError;

/// Bytes that may wait per channel before a send is refused.
pub(crate) const MAX_WAITING_BYTES: usize = 4 * 1024 * 1024;

/// The messages of one channel (reliable or lossy) not yet handed to SCTP.
#[derive(Default)]
pub(crate) struct DataQueue {
  waiting: VecDeque<Vec<u8>>,
  bytes: usize,
}

impl DataQueue {
  /// Sends `data` through `write` (true when SCTP took it) unless earlier messages still
  /// wait; otherwise queues it, or refuses it when the queue is full.
  pub(crate) fn send(&mut self, data: Vec<u8>, mut write: impl FnMut(&[u8]) -> bool) -> Result<(), TransportError> {
    self.flush(&mut write);
    if self.waiting.is_empty() && write(&data) {
      return Ok(());
    }
    if self.bytes + data.len() > MAX_WAITING_BYTES {
      return Err(TransportError::DataBacklog {
        waiting: self.bytes,
        limit: MAX_WAITING_BYTES,
      });
    }
    self.bytes += data.len();
    self.waiting.push_back(data);
    Ok(())
  }

  /// Hands waiting messages to `write` in order until it refuses one.
  pub(crate) fn flush(&mut self, mut write: impl FnMut(&[u8]) -> bool) {
    while let Some(front) = self.waiting.front() {
      if !write(front) {
        break;
      }
      self.bytes -= front.len();
      self.waiting.pop_front();
    }
  }

  /// Messages waiting.
  pub(crate) fn len(&self) -> usize {
    self.waiting.len()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn messages_go_out_in_order_once_the_writer_takes_them() {
    let mut q = DataQueue::default();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    q.send(vec![1], |_| false).unwrap();
    q.send(vec![2], |_| false).unwrap();
    assert_eq!(q.len(), 2);
    q.flush(|d| {
      sent.push(d.to_vec());
      true
    });
    assert_eq!(sent, vec![vec![1], vec![2]]);
    assert_eq!(q.len(), 0);
  }

  #[test]
  fn a_refused_message_keeps_its_place_ahead_of_later_ones() {
    let mut q = DataQueue::default();
    let mut budget = 1;
    let mut sent: Vec<u8> = Vec::new();
    for n in 1..=3u8 {
      q.send(vec![n], |_| false).unwrap();
    }
    q.flush(|d| {
      if budget == 0 {
        return false;
      }
      budget -= 1;
      sent.push(d[0]);
      true
    });
    assert_eq!(sent, vec![1]);
    q.flush(|d| {
      sent.push(d[0]);
      true
    });
    assert_eq!(sent, vec![1, 2, 3]);
  }

  #[test]
  fn a_full_queue_refuses_with_a_backlog_error_and_keeps_what_it_has() {
    let mut q = DataQueue::default();
    let chunk = vec![0u8; MAX_WAITING_BYTES / 4];
    for _ in 0..4 {
      q.send(chunk.clone(), |_| false).unwrap();
    }
    let err = q.send(vec![0u8; 1], |_| false).unwrap_err();
    assert_eq!(err.code(), "ERR_DATA_BACKLOG");
    assert_eq!(q.len(), 4);
  }
}
