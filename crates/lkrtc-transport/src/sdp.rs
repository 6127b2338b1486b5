//! Small SDP text helpers for what str0m's API does not expose: per-m-line msid/direction of a
//! remote description, and putting a track's chosen codec first in our offer.

use crate::VideoCodec;

/// Direction attribute of an m-section (session default: sendrecv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SdpDirection {
  SendRecv,
  SendOnly,
  RecvOnly,
  Inactive,
}

/// What we read from one m-section.
#[derive(Debug, Clone)]
pub(crate) struct MSection {
  pub kind: String,
  pub port: u16,
  pub mid: Option<String>,
  pub direction: SdpDirection,
  pub msid: Option<(String, String)>,
  /// Every SSRC of its `a=ssrc` lines (media and repair), sorted: the RTP streams the remote
  /// announces for this m-line.
  pub ssrcs: Vec<u32>,
  /// Payload types in m-line order.
  pub pts: Vec<u8>,
  /// pt -> encoding name (upper case).
  pub rtpmap: Vec<(u8, String)>,
}

impl MSection {
  pub fn codec_of(&self, pt: u8) -> Option<&str> {
    self.rtpmap.iter().find(|(p, _)| *p == pt).map(|(_, n)| n.as_str())
  }

  /// The first payload type that is one of our video codecs.
  #[cfg(test)]
  pub fn first_video_codec(&self) -> Option<VideoCodec> {
    self.pts.iter().find_map(|pt| video_codec(self.codec_of(*pt)?))
  }

  /// This (offer) section's most preferred video codec that `answer` kept: what the sender
  /// will use. An answerer lists codecs in its own order, so the answer alone cannot tell.
  pub fn accepted_video_codec(&self, answer: &MSection) -> Option<VideoCodec> {
    self
      .pts
      .iter()
      .filter(|pt| answer.pts.contains(pt))
      .find_map(|pt| video_codec(self.codec_of(*pt)?))
  }
}

fn video_codec(name: &str) -> Option<VideoCodec> {
  match name {
    "VP8" => Some(VideoCodec::Vp8),
    "H264" => Some(VideoCodec::H264),
    "VP9" => Some(VideoCodec::Vp9),
    "AV1" => Some(VideoCodec::Av1),
    _ => None,
  }
}

fn lines(sdp: &str) -> impl Iterator<Item = &str> {
  sdp.split('\n').map(|l| l.trim_end_matches('\r'))
}

/// Splits an SDP into its m-sections (the session part is skipped).
pub(crate) fn scan(sdp: &str) -> Vec<MSection> {
  let mut out: Vec<MSection> = Vec::new();
  for line in lines(sdp) {
    if let Some(m) = line.strip_prefix("m=") {
      let mut parts = m.split_whitespace();
      let kind = parts.next().unwrap_or_default().to_owned();
      let port = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
      let _proto = parts.next();
      let pts = parts.filter_map(|p| p.parse().ok()).collect();
      out.push(MSection {
        kind,
        port,
        mid: None,
        direction: SdpDirection::SendRecv,
        msid: None,
        ssrcs: Vec::new(),
        pts,
        rtpmap: Vec::new(),
      });
      continue;
    }
    let Some(cur) = out.last_mut() else { continue };
    let Some(attr) = line.strip_prefix("a=") else { continue };
    match attr {
      "sendrecv" => cur.direction = SdpDirection::SendRecv,
      "sendonly" => cur.direction = SdpDirection::SendOnly,
      "recvonly" => cur.direction = SdpDirection::RecvOnly,
      "inactive" => cur.direction = SdpDirection::Inactive,
      _ => {}
    }
    if let Some(mid) = attr.strip_prefix("mid:") {
      cur.mid = Some(mid.trim().to_owned());
    } else if let Some(msid) = attr.strip_prefix("msid:") {
      cur.msid = parse_msid(msid);
    } else if let Some(ssrc) = attr.strip_prefix("ssrc:") {
      if let Some(id) = ssrc.split_whitespace().next().and_then(|v| v.parse().ok()) {
        if let Err(at) = cur.ssrcs.binary_search(&id) {
          cur.ssrcs.insert(at, id);
        }
      }
      // Plan-B style `a=ssrc:N msid:stream track` when there is no a=msid line.
      if cur.msid.is_none() {
        if let Some(idx) = ssrc.find("msid:") {
          cur.msid = parse_msid(&ssrc[idx + 5..]);
        }
      }
    } else if let Some(map) = attr.strip_prefix("rtpmap:") {
      let mut it = map.splitn(2, ' ');
      let pt = it.next().and_then(|p| p.parse().ok());
      let name = it.next().and_then(|n| n.split('/').next());
      if let (Some(pt), Some(name)) = (pt, name) {
        cur.rtpmap.push((pt, name.to_ascii_uppercase()));
      }
    }
  }
  out
}

fn parse_msid(v: &str) -> Option<(String, String)> {
  let mut it = v.split_whitespace();
  let stream = it.next()?.to_owned();
  let track = it.next().unwrap_or_default().to_owned();
  Some((stream, track))
}

/// Rewrites the m-line of `mid` so the payload types of `codec` (and their RTX) come first.
/// SFUs such as livekit-server pick the first codec of the offer they support, so this is how a
/// track is published as H.264 while both codecs stay negotiable.
pub(crate) fn prefer_codec(sdp: &str, mid: &str, codec: VideoCodec) -> String {
  let sections = scan(sdp);
  let Some(section) = sections.iter().find(|s| s.mid.as_deref() == Some(mid)) else {
    return sdp.to_owned();
  };
  let index = sections.iter().position(|s| s.mid.as_deref() == Some(mid)).unwrap_or(0);
  let want: Vec<u8> = section
    .pts
    .iter()
    .copied()
    .filter(|pt| section.codec_of(*pt) == Some(codec.sdp_name()))
    .collect();
  if want.is_empty() {
    return sdp.to_owned();
  }
  let rtx: Vec<u8> = rtx_of(sdp, index, &want);
  let mut order: Vec<u8> = Vec::new();
  for pt in want.iter() {
    order.push(*pt);
    // RTX of each primary right behind it, as browsers write it.
    for (r, apt) in rtx.iter().map(|r| (r, apt_of(sdp, index, *r))) {
      if apt == Some(*pt) {
        order.push(*r);
      }
    }
  }
  for pt in &section.pts {
    if !order.contains(pt) {
      order.push(*pt);
    }
  }

  let mut out = String::with_capacity(sdp.len());
  let mut m_index = usize::MAX;
  let crlf = sdp.contains("\r\n");
  for line in lines(sdp) {
    if line.is_empty() {
      continue;
    }
    let mut line = line.to_owned();
    if line.starts_with("m=") {
      m_index = m_index.wrapping_add(1);
      if m_index == index {
        let head: Vec<&str> = line.split_whitespace().take(3).collect();
        let tail: Vec<String> = order.iter().map(|p| p.to_string()).collect();
        line = format!("{} {}", head.join(" "), tail.join(" "));
      }
    }
    out.push_str(&line);
    out.push_str(if crlf { "\r\n" } else { "\n" });
  }
  out
}

/// Lines of m-section `index` only.
fn section_lines(sdp: &str, index: usize) -> Vec<&str> {
  let mut m_index = usize::MAX;
  let mut v = Vec::new();
  for line in lines(sdp) {
    if line.starts_with("m=") {
      m_index = m_index.wrapping_add(1);
    }
    if m_index == index {
      v.push(line);
    }
  }
  v
}

/// `apt=` of an fmtp line for `pt` in section `index`.
fn apt_of(sdp: &str, index: usize, pt: u8) -> Option<u8> {
  let prefix = format!("a=fmtp:{pt} ");
  section_lines(sdp, index).into_iter().find_map(|l| {
    let params = l.strip_prefix(&prefix)?;
    params
      .split(';')
      .find_map(|p| p.trim().strip_prefix("apt=")?.parse().ok())
  })
}

/// The RTX payload types whose `apt` is one of `primaries`.
fn rtx_of(sdp: &str, index: usize, primaries: &[u8]) -> Vec<u8> {
  let sections = scan(sdp);
  let Some(section) = sections.get(index) else {
    return Vec::new();
  };
  section
    .pts
    .iter()
    .copied()
    .filter(|pt| section.codec_of(*pt) == Some("RTX"))
    .filter(|pt| apt_of(sdp, index, *pt).is_some_and(|a| primaries.contains(&a)))
    .collect()
}

#[cfg(test)]
mod tests {
  use super::*;

  const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r\na=mid:1\r\na=sendonly\r\n\
a=msid:PA_abc|TR_def TR_def\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n";

  #[test]
  fn scans_msid_direction_and_codecs() {
    let s = scan(OFFER);
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].mid.as_deref(), Some("1"));
    assert_eq!(s[1].direction, SdpDirection::SendOnly);
    assert_eq!(s[1].msid, Some(("PA_abc|TR_def".to_owned(), "TR_def".to_owned())));
    assert_eq!(s[1].first_video_codec(), Some(VideoCodec::Vp8));
  }

  #[test]
  fn scans_the_ssrcs_of_each_section() {
    let offer = format!(
      "{OFFER}a=ssrc-group:FID 42 7\r\na=ssrc:42 cname:x\r\na=ssrc:42 msid:PA_abc|TR_def TR_def\r\na=ssrc:7 cname:x\r\n"
    );
    let s = scan(&offer);
    assert!(s[0].ssrcs.is_empty());
    assert_eq!(s[1].ssrcs, vec![7, 42]);
  }

  #[test]
  fn prefers_h264_with_its_rtx() {
    let out = prefer_codec(OFFER, "1", VideoCodec::H264);
    assert!(out.contains("m=video 9 UDP/TLS/RTP/SAVPF 102 103 96 97\r\n"), "{out}");
    assert_eq!(scan(&out)[1].first_video_codec(), Some(VideoCodec::H264));
    // Untouched otherwise.
    assert_eq!(out.len(), OFFER.len());
  }

  #[test]
  fn unknown_mid_is_a_no_op() {
    assert_eq!(prefer_codec(OFFER, "9", VideoCodec::H264), OFFER);
  }
}
