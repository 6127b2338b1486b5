//! Data messages: LiveKit's `DataPacket` with a `UserPacket` inside. Ours go out on the
//! publisher connection's `_reliable` or `_lossy` channel; the server forwards other
//! participants' on the channels it opens on our subscriber connection. This module only shapes
//! and checks the bytes; the engine moves them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use livekit_protocol as proto;
use prost::Message;

use crate::{RtcError, RtcResult};

/// The largest encoded packet lkrtc sends: 64 KiB - 1, the SCTP message size every LiveKit
/// peer accepts (browsers and the server's SCTP stack refuse larger ones). What is left for the
/// payload depends on the topic and the destinations (a few bytes each).
pub const MAX_DATA_PACKET_BYTES: usize = 65_535;

/// Received messages that the application has not taken yet may hold at most this many payload
/// bytes; later ones are dropped (and counted) until it catches up.
pub const MAX_RECEIVED_WAITING_BYTES: usize = 16 * 1024 * 1024;

/// How a message travels. The numbers are LiveKit's `DataPacket.Kind`.
#[cfg_attr(feature = "napi", napi_derive::napi)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DataPacketKind {
  /// Unordered, never retransmitted: for frequent state where the newest matters.
  Lossy = 0,
  /// Ordered and retransmitted until delivered.
  Reliable = 1,
}

/// How to send one message.
#[derive(Debug, Clone, Default)]
pub struct DataPublishOptions {
  /// Lossy when false. LiveKit's SDKs default to reliable.
  pub reliable: bool,
  /// A label the receivers see, for telling kinds of messages apart.
  pub topic: Option<String>,
  /// Only these participants receive it; everyone else in the room when empty.
  pub destination_identities: Vec<String>,
}

/// The bytes of one outgoing message: a `DataPacket` carrying a `UserPacket`. `sequence`
/// numbers reliable packets so that a server can drop duplicates after a resume. The packet's
/// `kind` is deprecated in the protocol (the channel says it) but older peers still read it.
#[allow(deprecated)]
pub(crate) fn encode_user_packet(
  payload: &[u8],
  options: &DataPublishOptions,
  identity: &str,
  sequence: u32,
) -> RtcResult<Vec<u8>> {
  let kind = if options.reliable {
    proto::data_packet::Kind::Reliable
  } else {
    proto::data_packet::Kind::Lossy
  };
  let packet = proto::DataPacket {
    kind: kind as i32,
    participant_identity: identity.to_string(),
    destination_identities: options.destination_identities.clone(),
    sequence: if options.reliable { sequence } else { 0 },
    value: Some(proto::data_packet::Value::User(proto::UserPacket {
      payload: payload.to_vec(),
      topic: options.topic.clone(),
      ..Default::default()
    })),
    ..Default::default()
  };
  let bytes = packet.encode_to_vec();
  if bytes.len() > MAX_DATA_PACKET_BYTES {
    let overhead = bytes.len() - payload.len();
    return Err(RtcError::InvalidArgument {
      name: "payload",
      reason: format!(
        "a data message may be at most {} bytes with this topic and these destinations, got {}",
        MAX_DATA_PACKET_BYTES - overhead,
        payload.len()
      ),
    });
  }
  Ok(bytes)
}

/// A user message decoded from a received `DataPacket`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UserMessage {
  pub payload: Vec<u8>,
  pub kind: DataPacketKind,
  pub topic: Option<String>,
  /// Who sent it, as the server stamped it; empty for messages the server itself sends.
  pub sender_identity: String,
}

/// The user message in `bytes`; `None` for other packet types (speaker updates, RPC, streams,
/// ...) and for bytes that are not a `DataPacket`. The channel it came on says how it
/// travelled; the sender is the packet's identity, or the user packet's from older senders.
#[allow(deprecated)]
pub(crate) fn decode_user_packet(bytes: &[u8], reliable_channel: bool) -> Option<UserMessage> {
  let packet = proto::DataPacket::decode(bytes).ok()?;
  let Some(proto::data_packet::Value::User(user)) = packet.value else {
    return None;
  };
  let kind = if reliable_channel {
    DataPacketKind::Reliable
  } else {
    DataPacketKind::Lossy
  };
  let sender_identity = if packet.participant_identity.is_empty() {
    user.participant_identity
  } else {
    packet.participant_identity
  };
  Some(UserMessage {
    payload: user.payload,
    kind,
    topic: user.topic.filter(|t| !t.is_empty()),
    sender_identity,
  })
}

/// The received bytes waiting for the application, shared by the engine (which adds) and the
/// messages themselves (which give their bytes back when dropped, i.e. once taken).
#[derive(Clone, Default)]
pub(crate) struct ReceiveBudget {
  waiting: Arc<AtomicUsize>,
}

impl ReceiveBudget {
  /// A ticket for `bytes` more, or `None` when they do not fit.
  pub(crate) fn take(&self, bytes: usize) -> Option<BudgetTicket> {
    let mut now = self.waiting.load(Ordering::Relaxed);
    loop {
      if now + bytes > MAX_RECEIVED_WAITING_BYTES {
        return None;
      }
      match self
        .waiting
        .compare_exchange_weak(now, now + bytes, Ordering::AcqRel, Ordering::Relaxed)
      {
        Ok(_) => {
          return Some(BudgetTicket {
            waiting: self.waiting.clone(),
            bytes,
          })
        }
        Err(actual) => now = actual,
      }
    }
  }
}

/// Gives its bytes back to the [`ReceiveBudget`] when dropped.
#[derive(Debug)]
pub struct BudgetTicket {
  waiting: Arc<AtomicUsize>,
  bytes: usize,
}

impl Drop for BudgetTicket {
  fn drop(&mut self) {
    self.waiting.fetch_sub(self.bytes, Ordering::AcqRel);
  }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
  use super::*;

  fn options(reliable: bool, topic: Option<&str>, to: &[&str]) -> DataPublishOptions {
    DataPublishOptions {
      reliable,
      topic: topic.map(str::to_string),
      destination_identities: to.iter().map(|s| s.to_string()).collect(),
    }
  }

  #[test]
  fn a_user_packet_decodes_to_what_was_encoded() {
    let bytes = encode_user_packet(b"hello", &options(true, Some("chat"), &["bob"]), "alice", 7).unwrap();
    let message = decode_user_packet(&bytes, true).unwrap();
    assert_eq!(
      message,
      UserMessage {
        payload: b"hello".to_vec(),
        kind: DataPacketKind::Reliable,
        topic: Some("chat".into()),
        sender_identity: "alice".into(),
      }
    );
    let packet = proto::DataPacket::decode(bytes.as_slice()).unwrap();
    assert_eq!(packet.destination_identities, vec!["bob".to_string()]);
    assert_eq!(packet.sequence, 7);
  }

  #[test]
  fn a_lossy_packet_says_lossy_and_carries_no_sequence() {
    let bytes = encode_user_packet(&[1, 2, 3], &options(false, None, &[]), "a", 9).unwrap();
    let packet = proto::DataPacket::decode(bytes.as_slice()).unwrap();
    assert_eq!(packet.kind, proto::data_packet::Kind::Lossy as i32);
    assert_eq!(packet.sequence, 0);
    let message = decode_user_packet(&bytes, false).unwrap();
    assert_eq!(message.kind, DataPacketKind::Lossy);
    assert_eq!(message.topic, None);
  }

  #[test]
  fn the_largest_payload_fits_and_one_more_byte_is_refused_with_the_limit() {
    let o = options(true, Some("t"), &["x"]);
    let overhead = encode_user_packet(&[], &o, "me", 1).unwrap().len();
    // Length prefixes grow with the payload, so find the largest size that fits by trying.
    let mut max = MAX_DATA_PACKET_BYTES - overhead;
    while encode_user_packet(&vec![0; max], &o, "me", 1).is_err() {
      max -= 1;
    }
    assert!(max > 65_000);
    let err = encode_user_packet(&vec![0; max + 1], &o, "me", 1).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
    assert!(err.to_string().contains(&format!("got {}", max + 1)), "{err}");
  }

  #[test]
  fn the_sender_comes_from_the_user_packet_when_the_packet_has_none() {
    let packet = proto::DataPacket {
      value: Some(proto::data_packet::Value::User(proto::UserPacket {
        participant_identity: "old-client".into(),
        payload: vec![5],
        ..Default::default()
      })),
      ..Default::default()
    };
    let message = decode_user_packet(&packet.encode_to_vec(), true).unwrap();
    assert_eq!(message.sender_identity, "old-client");
    assert_eq!(message.payload, vec![5]);
  }

  #[test]
  fn packets_other_than_user_messages_and_garbage_decode_to_nothing() {
    let dtmf = proto::DataPacket {
      value: Some(proto::data_packet::Value::SipDtmf(proto::SipDtmf::default())),
      ..Default::default()
    };
    assert_eq!(decode_user_packet(&dtmf.encode_to_vec(), true), None);
    assert_eq!(decode_user_packet(&[0xff, 0xff, 0xff], true), None);
  }

  #[test]
  fn the_receive_budget_refuses_past_its_bound_and_refills_when_tickets_drop() {
    let budget = ReceiveBudget::default();
    let a = budget.take(MAX_RECEIVED_WAITING_BYTES - 10).unwrap();
    assert!(budget.take(11).is_none());
    let b = budget.take(10).unwrap();
    drop(a);
    assert!(budget.take(MAX_RECEIVED_WAITING_BYTES - 10).is_some());
    drop(b);
  }
}
