//! The user's choices on remote tracks: whether to subscribe (`Room::set_subscribed`) and which
//! layer to receive, or none (`Room::set_video_quality`, `set_video_dimensions`,
//! `set_track_enabled`), and the rule of succession across a full rejoin: a remote track's sid
//! changes across it, so what carries over (the choices, and the streams reading a track) waits
//! under the track's rejoin key (its publisher's identity, its source and its name) for the track
//! published again. A track ended by a rejoin is told its successor
//! ([`RemoteVideoTrack::successor`]), which streams follow.
//!
//! The layer asked of the server (`UpdateTrackSettings`) is the user's choice, unless adaptive
//! stream is on and the open streams of the track said what size they want: then the largest of
//! those sizes, for which the server picks the smallest layer at least that big.

use std::collections::HashMap;

use livekit_protocol as proto;

use crate::participant::RemoteParticipant;
use crate::publication::{RemoteTrackPublication, RemoteTrackSettings, TrackSource, VideoQuality};
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

/// Which layer of a video track to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
  Quality(VideoQuality),
  /// The smallest layer at least this big (the server's choice).
  Dimensions {
    width: u32,
    height: u32,
  },
}

/// The user's settings of one remote track, as `UpdateTrackSettings` carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackSettings {
  /// False pauses the track: the server sends nothing, the subscription stays.
  pub enabled: bool,
  pub layer: Layer,
}

impl Default for TrackSettings {
  fn default() -> Self {
    Self {
      enabled: true,
      layer: Layer::Quality(VideoQuality::High),
    }
  }
}

impl From<TrackSettings> for RemoteTrackSettings {
  fn from(settings: TrackSettings) -> Self {
    let (quality, dimensions) = match settings.layer {
      Layer::Quality(quality) => (Some(quality), None),
      Layer::Dimensions { width, height } => (None, Some((width, height))),
    };
    RemoteTrackSettings {
      enabled: settings.enabled,
      quality,
      dimensions,
    }
  }
}

/// One change of a track's settings: the last layer asked for replaces the one before, whether
/// a quality or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingsChange {
  Quality(VideoQuality),
  Dimensions { width: u32, height: u32 },
  Enabled(bool),
}

impl TrackSettings {
  fn apply(&mut self, change: SettingsChange) {
    match change {
      SettingsChange::Quality(quality) => self.layer = Layer::Quality(quality),
      SettingsChange::Dimensions { width, height } => self.layer = Layer::Dimensions { width, height },
      SettingsChange::Enabled(enabled) => self.enabled = enabled,
    }
  }
}

/// The message asking the server for `settings` on track `sid`; `wanted` is the size the
/// track's streams want (adaptive stream), which overrides the user's layer.
pub(crate) fn settings_message(
  sid: &str,
  settings: &TrackSettings,
  wanted: Option<(u32, u32)>,
) -> proto::UpdateTrackSettings {
  let layer = match wanted {
    Some((width, height)) => Layer::Dimensions { width, height },
    None => settings.layer,
  };
  let mut message = proto::UpdateTrackSettings {
    track_sids: vec![sid.to_string()],
    disabled: !settings.enabled,
    ..Default::default()
  };
  match layer {
    Layer::Quality(quality) => message.quality = quality.to_proto() as i32,
    // The server reads the size and ignores the quality then.
    Layer::Dimensions { width, height } => {
      message.width = width;
      message.height = height;
    }
  }
  message
}

/// Whether the server, which sends the full layer of a track nobody asked otherwise for, needs
/// to be told `message`.
fn is_servers_default(message: &proto::UpdateTrackSettings) -> bool {
  !message.disabled && message.width == 0 && message.quality == VideoQuality::High.to_proto() as i32
}

/// What the user chose for one track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Choice {
  /// `None`: as `auto_subscribe` says.
  subscribed: Option<bool>,
  settings: TrackSettings,
}

/// What a track published again after a rejoin takes from its predecessor.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Carried {
  /// The subscription to ask for, when it differs from `auto_subscribe`.
  pub subscribe: Option<bool>,
  /// Whether its settings differ from the server's default (then send them).
  pub settings: bool,
}

/// The choices of this session by track sid, and those carried over from earlier sessions.
#[derive(Debug)]
pub(crate) struct Subscriptions {
  auto_subscribe: bool,
  choices: HashMap<String, Choice>,
  carried: HashMap<TrackKey, Choice>,
  /// The settings last sent for each track, so an unchanged adaptive size is not sent again.
  sent: HashMap<String, proto::UpdateTrackSettings>,
  /// Tracks a rejoin ended, waiting for their successors.
  predecessors: HashMap<TrackKey, RemoteVideoTrack>,
}

impl Subscriptions {
  pub fn new(auto_subscribe: bool) -> Self {
    Subscriptions {
      auto_subscribe,
      choices: HashMap::new(),
      carried: HashMap::new(),
      sent: HashMap::new(),
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
    self.choices.entry(sid.to_string()).or_default().subscribed = Some(subscribed);
  }

  /// The user changed the settings of the track `sid`.
  pub fn change(&mut self, sid: &str, change: SettingsChange) {
    self.choices.entry(sid.to_string()).or_default().settings.apply(change);
  }

  /// The settings the user chose for the track `sid` (the default when none).
  pub fn settings(&self, sid: &str) -> TrackSettings {
    self.choices.get(sid).map(|c| c.settings).unwrap_or_default()
  }

  /// The settings of every track the user changed, for the getters.
  pub fn all_settings(&self) -> HashMap<String, RemoteTrackSettings> {
    self
      .choices
      .iter()
      .filter(|(_, c)| c.settings != TrackSettings::default())
      .map(|(sid, c)| (sid.clone(), c.settings.into()))
      .collect()
  }

  /// The tracks whose settings the user changed.
  pub fn with_settings(&self) -> impl Iterator<Item = &str> {
    self
      .choices
      .iter()
      .filter(|(_, c)| c.settings != TrackSettings::default())
      .map(|(sid, _)| sid.as_str())
  }

  /// The message to send for the track `sid`, given the size its streams want, or `None` when
  /// the server has it already: `force` (a new subscription, a resumed session) sends anything
  /// but the server's default, otherwise only a change from what was last sent goes out.
  pub fn message_for(
    &mut self,
    sid: &str,
    wanted: Option<(u32, u32)>,
    force: bool,
  ) -> Option<proto::UpdateTrackSettings> {
    let message = settings_message(sid, &self.settings(sid), wanted);
    let servers_default = is_servers_default(&message);
    let server_has_it = match self.sent.get(sid) {
      Some(last) => *last == message,
      None => servers_default,
    };
    let send = if force {
      !servers_default || !server_has_it
    } else {
      !server_has_it
    };
    if !send {
      return None;
    }
    if self.sent.len() >= MAX_CARRIED && !self.sent.contains_key(sid) {
      self.sent.clear();
    }
    self.sent.insert(sid.to_string(), message.clone());
    Some(message)
  }

  /// The track `sid` was unpublished: its choice goes with it.
  pub fn unpublished(&mut self, sid: &str) {
    self.choices.remove(sid);
    self.sent.remove(sid);
  }

  /// The session ends in a rejoin: the choices on these tracks wait for their successors.
  /// Choices still waiting from an earlier rejoin stay (their tracks may yet come back), within
  /// a bound.
  pub fn carry_over<'a>(
    &mut self,
    tracks: impl IntoIterator<Item = (&'a RemoteParticipant, &'a RemoteTrackPublication)>,
  ) {
    let mut choices = std::mem::take(&mut self.choices);
    // The new session's server knows nothing of the old one's settings.
    self.sent.clear();
    if self.carried.len() + choices.len() > MAX_CARRIED {
      self.carried.clear();
    }
    for (participant, publication) in tracks {
      if let Some(choice) = choices.remove(&publication.sid) {
        self.carried.insert(track_key(participant, publication), choice);
      }
    }
  }

  /// A track was published: if it succeeds one the user chose for, the choice is now its own.
  /// Returns what to ask the server for.
  pub fn published(&mut self, participant: &RemoteParticipant, publication: &RemoteTrackPublication) -> Carried {
    if self.carried.is_empty() {
      return Carried::default();
    }
    let Some(choice) = self.carried.remove(&track_key(participant, publication)) else {
      return Carried::default();
    };
    self.choices.insert(publication.sid.clone(), choice);
    Carried {
      subscribe: choice.subscribed.filter(|s| *s != self.auto_subscribe),
      settings: choice.settings != TrackSettings::default(),
    }
  }

  #[cfg(test)]
  fn choice(&self, sid: &str) -> Option<bool> {
    self.choices.get(sid).and_then(|c| c.subscribed)
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
    assert_eq!(subs.published(&after, publication).subscribe, Some(false));
    assert_eq!(subs.choice("TR_new"), Some(false));
    // Once taken it does not apply twice.
    assert_eq!(subs.published(&after, publication), Carried::default());
  }

  #[test]
  fn a_carried_choice_equal_to_auto_subscribe_needs_no_request() {
    let mut subs = Subscriptions::new(false);
    let before = remote("alice", &[("TR_old", "cam")]);
    subs.choose("TR_old", false);
    subs.carry_over(tracks(&before));
    let after = remote("alice", &[("TR_new", "cam")]);
    assert_eq!(
      subs.published(&after, &after.publications["TR_new"]),
      Carried::default()
    );
    assert_eq!(subs.choice("TR_new"), Some(false));
  }

  #[test]
  fn a_choice_does_not_carry_to_another_publishers_track_of_the_same_name() {
    let mut subs = Subscriptions::new(true);
    subs.choose("TR_old", false);
    subs.carry_over(tracks(&remote("alice", &[("TR_old", "cam")])));
    let bob = remote("bob", &[("TR_new", "cam")]);
    assert_eq!(subs.published(&bob, &bob.publications["TR_new"]), Carried::default());
  }

  #[test]
  fn an_unpublished_tracks_choice_does_not_carry_over() {
    let mut subs = Subscriptions::new(true);
    let before = remote("alice", &[("TR_old", "cam")]);
    subs.choose("TR_old", false);
    subs.unpublished("TR_old");
    subs.carry_over(tracks(&before));
    let after = remote("alice", &[("TR_new", "cam")]);
    assert_eq!(
      subs.published(&after, &after.publications["TR_new"]),
      Carried::default()
    );
  }

  #[test]
  fn a_choice_waits_across_two_rejoins() {
    let mut subs = Subscriptions::new(true);
    subs.choose("TR_1", false);
    subs.carry_over(tracks(&remote("alice", &[("TR_1", "cam")])));
    // The second session ended before alice published again.
    subs.carry_over(std::iter::empty());
    let after = remote("alice", &[("TR_3", "cam")]);
    assert_eq!(
      subs.published(&after, &after.publications["TR_3"]).subscribe,
      Some(false)
    );
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

  fn quality(message: &proto::UpdateTrackSettings) -> i32 {
    message.quality
  }

  #[test]
  fn the_quality_chosen_is_asked_for() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::Low));
    let message = subs.message_for("TR_1", None, false).expect("a change to send");
    assert_eq!(message.track_sids, vec!["TR_1".to_string()]);
    assert_eq!(quality(&message), proto::VideoQuality::Low as i32);
    assert_eq!((message.width, message.height, message.disabled), (0, 0, false));
  }

  #[test]
  fn dimensions_replace_a_quality_and_a_quality_replaces_dimensions() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::Low));
    subs.change(
      "TR_1",
      SettingsChange::Dimensions {
        width: 640,
        height: 360,
      },
    );
    let message = subs.message_for("TR_1", None, false).unwrap();
    assert_eq!((message.width, message.height), (640, 360));
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::Medium));
    let message = subs.message_for("TR_1", None, false).unwrap();
    assert_eq!((message.width, message.height), (0, 0));
    assert_eq!(quality(&message), proto::VideoQuality::Medium as i32);
  }

  #[test]
  fn pausing_keeps_the_layer_chosen() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::Low));
    subs.change("TR_1", SettingsChange::Enabled(false));
    let message = subs.message_for("TR_1", None, false).unwrap();
    assert!(message.disabled);
    assert_eq!(quality(&message), proto::VideoQuality::Low as i32);
    subs.change("TR_1", SettingsChange::Enabled(true));
    let message = subs.message_for("TR_1", None, false).unwrap();
    assert!(!message.disabled);
    assert_eq!(quality(&message), proto::VideoQuality::Low as i32);
  }

  #[test]
  fn unchanged_settings_are_not_sent_again() {
    let mut subs = Subscriptions::new(true);
    // The server's default needs no message.
    assert_eq!(subs.message_for("TR_1", None, false), None);
    assert_eq!(subs.message_for("TR_1", None, true), None);
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::Low));
    assert!(subs.message_for("TR_1", None, false).is_some());
    assert_eq!(subs.message_for("TR_1", None, false), None);
    // A new subscription or a resumed session gets them again.
    assert!(subs.message_for("TR_1", None, true).is_some());
  }

  #[test]
  fn back_to_the_default_is_sent_once() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_1", SettingsChange::Enabled(false));
    assert!(subs.message_for("TR_1", None, false).is_some());
    subs.change("TR_1", SettingsChange::Enabled(true));
    let message = subs
      .message_for("TR_1", None, false)
      .expect("the server has the track paused");
    assert!(!message.disabled);
    assert_eq!(subs.message_for("TR_1", None, false), None);
  }

  #[test]
  fn the_size_streams_want_overrides_the_layer_chosen_but_not_a_pause() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::Low));
    subs.change("TR_1", SettingsChange::Enabled(false));
    let message = subs.message_for("TR_1", Some((1280, 720)), false).unwrap();
    assert_eq!((message.width, message.height, message.disabled), (1280, 720, true));
    // The streams closed: back to the quality chosen.
    let message = subs.message_for("TR_1", None, false).unwrap();
    assert_eq!((message.width, quality(&message)), (0, proto::VideoQuality::Low as i32));
  }

  #[test]
  fn settings_carry_over_to_the_track_published_again() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_old", SettingsChange::Quality(VideoQuality::Medium));
    subs.change("TR_old", SettingsChange::Enabled(false));
    assert!(subs.message_for("TR_old", None, false).is_some());
    subs.carry_over(tracks(&remote("alice", &[("TR_old", "cam")])));
    let after = remote("alice", &[("TR_new", "cam")]);
    let carried = subs.published(&after, &after.publications["TR_new"]);
    assert_eq!(
      carried,
      Carried {
        subscribe: None,
        settings: true
      }
    );
    let message = subs.message_for("TR_new", None, true).unwrap();
    assert_eq!(message.track_sids, vec!["TR_new".to_string()]);
    assert_eq!(
      (quality(&message), message.disabled),
      (proto::VideoQuality::Medium as i32, true)
    );
  }

  #[test]
  fn a_subscription_choice_and_settings_carry_over_together() {
    let mut subs = Subscriptions::new(true);
    subs.choose("TR_old", false);
    subs.change(
      "TR_old",
      SettingsChange::Dimensions {
        width: 320,
        height: 180,
      },
    );
    subs.carry_over(tracks(&remote("alice", &[("TR_old", "cam")])));
    let after = remote("alice", &[("TR_new", "cam")]);
    let carried = subs.published(&after, &after.publications["TR_new"]);
    assert_eq!(
      carried,
      Carried {
        subscribe: Some(false),
        settings: true
      }
    );
    assert_eq!(subs.choice("TR_new"), Some(false));
  }

  #[test]
  fn default_settings_do_not_need_carrying() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_old", SettingsChange::Quality(VideoQuality::High));
    subs.carry_over(tracks(&remote("alice", &[("TR_old", "cam")])));
    let after = remote("alice", &[("TR_new", "cam")]);
    assert_eq!(
      subs.published(&after, &after.publications["TR_new"]),
      Carried::default()
    );
  }

  #[test]
  fn an_unpublished_tracks_settings_go_with_it() {
    let mut subs = Subscriptions::new(true);
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::Low));
    assert!(subs.message_for("TR_1", None, false).is_some());
    subs.unpublished("TR_1");
    assert_eq!(subs.settings("TR_1"), TrackSettings::default());
    assert_eq!(subs.with_settings().count(), 0);
    assert_eq!(subs.message_for("TR_1", None, true), None);
  }

  #[test]
  fn the_getters_see_the_last_layer_chosen_and_the_pause() {
    let mut subs = Subscriptions::new(true);
    assert!(subs.all_settings().is_empty());
    subs.change(
      "TR_1",
      SettingsChange::Dimensions {
        width: 640,
        height: 360,
      },
    );
    subs.change("TR_1", SettingsChange::Enabled(false));
    let expected = RemoteTrackSettings {
      enabled: false,
      quality: None,
      dimensions: Some((640, 360)),
    };
    assert_eq!(subs.all_settings().get("TR_1"), Some(&expected));
    subs.change("TR_1", SettingsChange::Quality(VideoQuality::High));
    subs.change("TR_1", SettingsChange::Enabled(true));
    // Back to the default: nothing to report.
    assert!(subs.all_settings().is_empty());
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
