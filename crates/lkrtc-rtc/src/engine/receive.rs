//! The remote video tracks we receive: a track the server adds to the subscriber connection
//! gets a decoder whose bounded input the transport feeds directly (media never passes the
//! engine's loop); the track ends, with its reason, when it goes away.

use std::collections::HashMap;

use super::subscriptions::track_key;
use super::Engine;
use crate::decoder_task::{self, DecoderKeepAlive};
use crate::events::RoomEvent;
use crate::options::VideoCodec;
use crate::participant::RemoteParticipant;
use crate::publication::{RemoteTrackPublication, TrackKind};
use crate::remote_track::{RemoteVideoTrack, TrackEndReason};

/// A remote video track being received.
pub(crate) struct Subscribed {
  pub(super) track: RemoteVideoTrack,
  pub(super) publication: RemoteTrackPublication,
  participant: RemoteParticipant,
  /// The decoder lives until the subscription ends here, not when the transport goes.
  _decoder: DecoderKeepAlive,
}

/// Received tracks by the subscriber transceiver's mid.
pub(crate) type Receiving = HashMap<String, Subscribed>;

/// The participant and track sids of a subscriber track: its stream id is `PA_xxx|TR_xxx`
/// (older servers: the stream id is the participant's and the track id the track's).
fn sids_of<'a>(stream_id: &'a str, track_id: &'a str) -> (&'a str, &'a str) {
  let (participant_sid, track_sid) = stream_id.split_once('|').unwrap_or((stream_id, track_id));
  let track_sid = if track_sid.starts_with("TR_") {
    track_sid
  } else {
    track_id
  };
  (participant_sid, track_sid)
}

/// The codec to start the decoder with. The SFU's offer lists every codec, so the SDP cannot
/// tell which one the publisher uses; the publication's mime type can. The decoder follows the
/// frames' codec either way.
fn codec_of(mime_type: &str, sdp_codec: Option<VideoCodec>) -> VideoCodec {
  VideoCodec::from_name(mime_type).unwrap_or(sdp_codec.unwrap_or_default())
}

impl Engine {
  /// A new remote track on the subscriber connection; returns its sid once it is received.
  pub(super) fn track_added(
    &mut self,
    mid: String,
    stream_id: &str,
    track_id: &str,
    codec: Option<VideoCodec>,
  ) -> Option<String> {
    let (participant_sid, track_sid) = sids_of(stream_id, track_id);
    let participant = self
      .session
      .remote_by_sid(participant_sid)
      .or_else(|| self.session.publisher_of(track_sid))
      .cloned();
    let Some(participant) = participant else {
      tracing::warn!("track {track_sid} from unknown participant {participant_sid}");
      return None;
    };
    let Some(publication) = participant.track_publication(track_sid).cloned() else {
      tracing::warn!("unknown track {track_sid} of {}", participant.identity);
      return None;
    };
    if publication.kind != TrackKind::Video {
      return None;
    }
    let codec = codec_of(&publication.mime_type, codec);
    let track = RemoteVideoTrack::new(
      publication.sid.clone(),
      publication.name.clone(),
      participant.identity.clone(),
    );
    let (pc, pli_mid) = (self.subscriber.clone(), mid.clone());
    let request_keyframe = move || pc.request_keyframe(&pli_mid);
    // As LiveKit's SDKs: a track that advertises the trailer is stripped of it, also when the
    // server already did (then nothing is found).
    let frame_metadata = publication.frame_metadata;
    let input = match decoder_task::spawn(codec, mid.clone(), track.clone(), frame_metadata, request_keyframe) {
      Ok(input) => input,
      Err(e) => {
        tracing::warn!("cannot start a decoder for {track_sid}: {e}");
        return None;
      }
    };
    let decoder = input.keep_alive();
    self.subscriber.set_video_sink(&mid, Some(input));
    if self.config.adaptive_stream {
      track.report_streams_to(self.streams_changed.clone());
    }
    self
      .subscriptions
      .subscribed(&track_key(&participant, &publication), &track);
    let _ = self.events.send(RoomEvent::TrackSubscribed {
      track: track.clone(),
      publication: publication.clone(),
      participant: participant.clone(),
    });
    let sid = publication.sid.clone();
    self.receiving.insert(
      mid,
      Subscribed {
        track,
        publication,
        participant,
        _decoder: decoder,
      },
    );
    Some(sid)
  }

  /// The server removed the track on `mid` from the subscriber connection.
  pub(super) fn track_removed(&mut self, mid: &str) {
    if let Some(sub) = self.receiving.remove(mid) {
      self.end_subscription(mid, sub, TrackEndReason::Unsubscribed);
    }
  }

  /// Ends the reception of the track `track_sid`.
  pub(super) fn unsubscribe_sid(&mut self, track_sid: &str, reason: TrackEndReason) {
    let mids: Vec<String> = self
      .receiving
      .iter()
      .filter(|(_, s)| s.publication.sid == track_sid)
      .map(|(m, _)| m.clone())
      .collect();
    for mid in mids {
      if let Some(sub) = self.receiving.remove(&mid) {
        self.end_subscription(&mid, sub, reason);
      }
    }
  }

  /// Ends `sub`'s track with `reason` and its streams with it, and stops feeding its decoder
  /// (the thread ends once the subscription, holding its keep-alive, is dropped).
  fn stop_receiving(&self, mid: &str, sub: &Subscribed, reason: TrackEndReason) {
    sub.track.set_end_reason(reason);
    self.subscriber.set_video_sink(mid, None);
    sub.track.end();
  }

  /// A rejoin ends every received track, announcing each; each waits for its successor.
  pub(super) fn unsubscribe_all_for_rejoin(&mut self) {
    for (mid, sub) in std::mem::take(&mut self.receiving) {
      let key = track_key(&sub.participant, &sub.publication);
      self.subscriptions.ended_in_rejoin(key, sub.track.clone());
      self.end_subscription(&mid, sub, TrackEndReason::Rejoined);
    }
  }

  /// The room ended: every received track ends now, without events.
  pub(super) fn end_all_received(&mut self, reason: TrackEndReason) {
    for (mid, sub) in std::mem::take(&mut self.receiving) {
      self.stop_receiving(&mid, &sub, reason);
    }
  }

  fn end_subscription(&mut self, mid: &str, sub: Subscribed, reason: TrackEndReason) {
    self.stop_receiving(mid, &sub, reason);
    let _ = self.events.send(RoomEvent::TrackUnsubscribed {
      track: sub.track,
      publication: sub.publication,
      participant: sub.participant,
    });
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn the_stream_id_names_participant_and_track() {
    assert_eq!(sids_of("PA_a|TR_b", "whatever"), ("PA_a", "TR_b"));
  }

  #[test]
  fn without_a_track_sid_in_the_stream_id_the_track_id_names_the_track() {
    assert_eq!(sids_of("PA_a", "TR_b"), ("PA_a", "TR_b"));
    assert_eq!(sids_of("PA_a|other", "TR_b"), ("PA_a", "TR_b"));
  }

  #[test]
  fn the_publications_mime_type_picks_the_decoder_over_the_sdp() {
    assert_eq!(codec_of("video/H264", Some(VideoCodec::Vp8)), VideoCodec::H264);
    assert_eq!(codec_of("video/vp8", Some(VideoCodec::H264)), VideoCodec::Vp8);
    assert_eq!(codec_of("video/AV1", Some(VideoCodec::Vp8)), VideoCodec::Av1);
  }

  #[test]
  fn without_a_known_mime_type_the_sdp_codec_is_used_then_vp8() {
    assert_eq!(codec_of("", Some(VideoCodec::H264)), VideoCodec::H264);
    assert_eq!(codec_of("video/H265", None), VideoCodec::Vp8);
  }
}
