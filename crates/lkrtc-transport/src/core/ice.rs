//! ICE and path liveness: remote candidates, announcing the local ones, datagrams in (which path
//! is in use, when it last carried anything) and the connected/disconnected transitions.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input};

use super::Core;
use crate::candidate::candidate_init_json;
use crate::recv_estimate::rtp_abs_send_time;
use crate::sdp;
use crate::TransportEvent;

/// Whether a packet is DTLS, RTP or RTCP, which go on the nominated pair only, rather than STUN,
/// which goes on every pair (RFC 7983: a first byte of 0-3 is STUN).
pub(super) fn is_media(packet: &[u8]) -> bool {
  packet.first().is_some_and(|b| *b > 3)
}

impl Core {
  pub fn add_remote_candidate(&mut self, c: Candidate) {
    if !crate::candidate::reachable(&c) {
      return;
    }
    // Nor can a v4 socket reach a v6 candidate (or the reverse).
    if c.addr().is_ipv4() != self.local_is_v4 {
      return;
    }
    self.rtc.add_remote_candidate(c);
  }

  /// First local description: from now on the candidates have a mid to refer to.
  pub(super) fn announce_candidates(&mut self, local_sdp: &str) {
    if self.candidates_announced {
      return;
    }
    self.candidates_announced = true;
    let first_mid = sdp::scan(local_sdp).into_iter().find_map(|s| s.mid);
    for c in &self.local_candidates {
      let json = candidate_init_json(c, first_mid.as_deref());
      self.events.push_back(TransportEvent::LocalCandidate(json));
    }
  }

  pub fn handle_receive(&mut self, now: Instant, proto: Protocol, source: SocketAddr, dest: SocketAddr, data: &[u8]) {
    let Ok(contents) = data.try_into() else {
      return; // not STUN/DTLS/RTP: stray datagram
    };
    // DTLS, RTP and RTCP come only on the pair the remote uses, so they prove a path alive; STUN
    // comes on every pair, and a standby pair's checks prove nothing about the path in use.
    let media = is_media(data);
    if let Some(estimate) = &mut self.recv_estimate {
      match self.abs_send_time_id.and_then(|id| rtp_abs_send_time(data, id)) {
        Some(sent) => estimate.on_packet(now, sent, data.len()),
        None => estimate.on_bytes(now, data.len()),
      }
    }
    if media {
      self.media_path = Some((proto, source));
    }
    if media || self.media_path.is_none_or(|path| path == (proto, source)) {
      self.last_received = Some(now);
      if !self.connected && self.dtls_up && self.ice_up {
        // Disconnected for silence, and the path carries datagrams again.
        self.set_connected(true, now);
      }
    }
    let input = Input::Receive(
      now,
      Receive {
        proto,
        source,
        destination: dest,
        contents,
      },
    );
    if let Err(e) = self.rtc.handle_input(input) {
      tracing::debug!("handle_input: {e}");
    }
  }

  pub(super) fn set_connected(&mut self, up: bool, now: Instant) {
    if up == self.connected {
      return;
    }
    self.connected = up;
    if up {
      self.disconnected_since = None;
      self.events.push_back(TransportEvent::Connected);
      // Media written while not connected was dropped: start every track with a keyframe.
      for t in self.tracks.iter().filter(|t| t.negotiated) {
        self.events.push_back(TransportEvent::KeyframeRequest {
          mid: t.local,
          rid: None,
        });
      }
    } else {
      self.disconnected_since = Some(now);
      self.events.push_back(TransportEvent::Disconnected);
    }
  }
}
