//! The subscription choices made with `Room::set_subscribed`, and the rule of succession across
//! a full rejoin: a remote track's sid changes across it, so what carries over (a subscription
//! choice, and the streams reading a track) waits under the track's rejoin key (its publisher's
//! identity, its source and its name) for the track published again. A track ended by a rejoin
//! is told its successor ([`RemoteVideoTrack::successor`]), which streams follow.

use std::collections::HashMap;

use crate::participant::RemoteParticipant;
use crate::publication::{RemoteTrackPublication, TrackSource};
use crate::remote_track::RemoteVideoTrack;

/// At most this many choices (and as many ended tracks) wait for their successors after full
/// rejoins.
const MAX_CARRIED: usize = 1024;

/// A remote track across a full rejoin, where its sid changes: its publisher's identity, its
/// source and its name.
pub(crate) type TrackKey = (String, TrackSource, String);

pub(crate) fn track_key(participant: &RemoteParticipant, publication: &RemoteTrackPublication) -> TrackKey {
  (
    participant.identity.clone(),
    publication.source,
    publication.name.clone(),
  )
}

/// The choices of this session by track sid, and those carried over from earlier sessions.
#[derive(Debug)]
pub(crate) struct Subscriptions {
  auto_subscribe: bool,
  choices: HashMap<String, bool>,
  carried: HashMap<TrackKey, bool>,
  /// Tracks a rejoin ended, waiting for their successors.
  predecessors: HashMap<TrackKey, RemoteVideoTrack>,
}

impl Subscriptions {
  pub fn new(auto_subscribe: bool) -> Self {
    Subscriptions {
      auto_subscribe,
      choices: HashMap::new(),
      carried: HashMap::new(),
      predecessors: HashMap::new(),
    }
  }

  /// A rejoin ended `track`: it waits for its successor.
  pub fn ended_in_rejoin(&mut self, key: TrackKey, track: RemoteVideoTrack) {
    if self.predecessors.len() >= MAX_CARRIED {
      self.predecessors.clear();
    }
    self.predecessors.insert(key, track);
  }

  /// A track was subscribed: if a rejoin ended its predecessor, that one learns its successor.
  pub fn subscribed(&mut self, key: &TrackKey, track: &RemoteVideoTrack) {
    if let Some(predecessor) = self.predecessors.remove(key) {
      predecessor.set_successor(track.clone());
    }
  }

  /// The user chose to (un)subscribe the track `sid`.
  pub fn choose(&mut self, sid: &str, subscribed: bool) {
    self.choices.insert(sid.to_string(), subscribed);
  }

  /// The track `sid` was unpublished: its choice goes with it.
  pub fn unpublished(&mut self, sid: &str) {
    self.choices.remove(sid);
  }

  /// The session ends in a rejoin: the choices on these tracks wait for their successors.
  /// Choices still waiting from an earlier rejoin stay (their tracks may yet come back), within
  /// a bound.
  pub fn carry_over<'a>(
    &mut self,
    tracks: impl IntoIterator<Item = (&'a RemoteParticipant, &'a RemoteTrackPublication)>,
  ) {
    let mut choices = std::mem::take(&mut self.choices);
    if self.carried.len() + choices.len() > MAX_CARRIED {
      self.carried.clear();
    }
    for (participant, publication) in tracks {
      if let Some(subscribed) = choices.remove(&publication.sid) {
        self.carried.insert(track_key(participant, publication), subscribed);
      }
    }
  }

  /// A track was published: if it succeeds one the user chose for, the choice is now its own.
  /// Returns the subscription to ask the server for, when it differs from `auto_subscribe`.
  pub fn published(&mut self, participant: &RemoteParticipant, publication: &RemoteTrackPublication) -> Option<bool> {
    if self.carried.is_empty() {
      return None;
    }
    let subscribed = self.carried.remove(&track_key(participant, publication))?;
    self.choices.insert(publication.sid.clone(), subscribed);
    (subscribed != self.auto_subscribe).then_some(subscribed)
  }

  #[cfg(test)]
  fn choice(&self, sid: &str) -> Option<bool> {
    self.choices.get(sid).copied()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn remote(identity: &str, tracks: &[(&str, &str)]) -> RemoteParticipant {
    let info = livekit_protocol::ParticipantInfo {
      sid: format!("PA_{identity}"),
      identity: identity.into(),
      tracks: tracks
        .iter()
        .map(|(sid, name)| livekit_protocol::TrackInfo {
          sid: (*sid).into(),
          name: (*name).into(),
          source: livekit_protocol::TrackSource::Camera as i32,
          ..Default::default()
        })
        .collect(),
      ..Default::default()
    };
    RemoteParticipant::from_info(&info)
  }

  fn tracks(p: &RemoteParticipant) -> Vec<(&RemoteParticipant, &RemoteTrackPublication)> {
    p.publications.values().map(|t| (p, t)).collect()
  }

  #[test]
  fn a_choice_carries_over_to_the_track_published_again() {
    let mut subs = Subscriptions::new(true);
    let before = remote("alice", &[("TR_old", "cam")]);
    subs.choose("TR_old", false);
    subs.carry_over(tracks(&before));
    let after = remote("alice", &[("TR_new", "cam")]);
    let publication = &after.publications["TR_new"];
    assert_eq!(subs.published(&after, publication), Some(false));
    assert_eq!(subs.choice("TR_new"), Some(false));
    // Once taken it does not apply twice.
    assert_eq!(subs.published(&after, publication), None);
  }

  #[test]
  fn a_carried_choice_equal_to_auto_subscribe_needs_no_request() {
    let mut subs = Subscriptions::new(false);
    let before = remote("alice", &[("TR_old", "cam")]);
    subs.choose("TR_old", false);
    subs.carry_over(tracks(&before));
    let after = remote("alice", &[("TR_new", "cam")]);
    assert_eq!(subs.published(&after, &after.publications["TR_new"]), None);
    assert_eq!(subs.choice("TR_new"), Some(false));
  }

  #[test]
  fn a_choice_does_not_carry_to_another_publishers_track_of_the_same_name() {
    let mut subs = Subscriptions::new(true);
    subs.choose("TR_old", false);
    subs.carry_over(tracks(&remote("alice", &[("TR_old", "cam")])));
    let bob = remote("bob", &[("TR_new", "cam")]);
    assert_eq!(subs.published(&bob, &bob.publications["TR_new"]), None);
  }

  #[test]
  fn an_unpublished_tracks_choice_does_not_carry_over() {
    let mut subs = Subscriptions::new(true);
    let before = remote("alice", &[("TR_old", "cam")]);
    subs.choose("TR_old", false);
    subs.unpublished("TR_old");
    subs.carry_over(tracks(&before));
    let after = remote("alice", &[("TR_new", "cam")]);
    assert_eq!(subs.published(&after, &after.publications["TR_new"]), None);
  }

  #[test]
  fn a_choice_waits_across_two_rejoins() {
    let mut subs = Subscriptions::new(true);
    subs.choose("TR_1", false);
    subs.carry_over(tracks(&remote("alice", &[("TR_1", "cam")])));
    // The second session ended before alice published again.
    subs.carry_over(std::iter::empty());
    let after = remote("alice", &[("TR_3", "cam")]);
    assert_eq!(subs.published(&after, &after.publications["TR_3"]), Some(false));
  }

  fn key(identity: &str, name: &str) -> TrackKey {
    (identity.into(), TrackSource::Camera, name.into())
  }

  #[test]
  fn a_track_ended_by_a_rejoin_learns_its_successor() {
    let mut subs = Subscriptions::new(true);
    let old = RemoteVideoTrack::new("TR_old".into(), "cam".into(), "alice".into());
    subs.ended_in_rejoin(key("alice", "cam"), old.clone());
    let new = RemoteVideoTrack::new("TR_new".into(), "cam".into(), "alice".into());
    subs.subscribed(&key("alice", "cam"), &new);
    assert_eq!(old.successor().map(|t| t.sid()).as_deref(), Some("TR_new"));
    assert!(new.successor().is_none());
  }

  #[test]
  fn another_name_or_publisher_does_not_succeed_a_track() {
    let mut subs = Subscriptions::new(true);
    let old = RemoteVideoTrack::new("TR_old".into(), "cam".into(), "alice".into());
    subs.ended_in_rejoin(key("alice", "cam"), old.clone());
    let screen = RemoteVideoTrack::new("TR_s".into(), "screen".into(), "alice".into());
    subs.subscribed(&key("alice", "screen"), &screen);
    let bobs = RemoteVideoTrack::new("TR_b".into(), "cam".into(), "bob".into());
    subs.subscribed(&key("bob", "cam"), &bobs);
    assert!(old.successor().is_none());
  }

  #[test]
  fn successions_chain_across_rejoins() {
    let mut subs = Subscriptions::new(true);
    let first = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    subs.ended_in_rejoin(key("alice", "cam"), first.clone());
    let second = RemoteVideoTrack::new("TR_2".into(), "cam".into(), "alice".into());
    subs.subscribed(&key("alice", "cam"), &second);
    subs.ended_in_rejoin(key("alice", "cam"), second.clone());
    let third = RemoteVideoTrack::new("TR_3".into(), "cam".into(), "alice".into());
    subs.subscribed(&key("alice", "cam"), &third);
    let chain = first.successor().and_then(|t| t.successor()).map(|t| t.sid());
    assert_eq!(chain.as_deref(), Some("TR_3"));
  }

  #[test]
  fn carried_choices_are_bounded() {
    let mut subs = Subscriptions::new(true);
    for n in 0..MAX_CARRIED + 10 {
      let sid = format!("TR_{n}");
      subs.choose(&sid, false);
      subs.carry_over(tracks(&remote(&format!("p{n}"), &[(&sid, "cam")])));
      assert!(subs.carried.len() <= MAX_CARRIED);
    }
  }
}
