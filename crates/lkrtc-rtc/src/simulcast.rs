//! Which simulcast layers a published track sends: LiveKit's rules (its JS and Rust SDKs) for
//! how many layers a source of a given size gets, their sizes and encodings, the RTP stream ids
//! (`q`, `h`, `f`, lowest first) and the `VideoLayer`s advertised in `AddTrackRequest`.

use livekit_protocol as proto;

use crate::options::VideoEncoding;
use crate::{RtcError, RtcResult};

/// A lower layer's size and encoding, as a user chooses it (`simulcastLayers`) or LiveKit's
/// defaults give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoPreset {
  /// Width in pixels (for the layer's aspect, only the shorter side of the preset counts).
  pub width: u32,
  /// Height in pixels.
  pub height: u32,
  /// The layer's encoding.
  pub encoding: VideoEncoding,
}

impl VideoPreset {
  /// Layer `index` of `simulcastLayers` from JavaScript numbers: whole pixel counts from 1, the
  /// encoders' bitrate and frame-rate ranges; rather refused than rounded. Whether it suits the
  /// source is [`check_lower_layers`]'s question.
  pub fn from_numbers(index: usize, width: f64, height: f64, max_bitrate: f64, max_framerate: f64) -> RtcResult<Self> {
    let invalid = |reason: String| RtcError::InvalidArgument {
      name: "simulcastLayers",
      reason: format!("layer {index}: {reason}"),
    };
    let pixels = |name: &str, v: f64| {
      if v.fract() == 0.0 && v >= 1.0 && v <= f64::from(u32::MAX) {
        Ok(v as u32)
      } else {
        Err(invalid(format!(
          "{name} must be a whole number of pixels from 1, got {v}"
        )))
      }
    };
    let width = pixels("width", width)?;
    let height = pixels("height", height)?;
    let max_bitrate = VideoEncoding::max_bitrate_from(max_bitrate).ok_or_else(|| {
      invalid(format!(
        "maxBitrate must be an integer from {} to {}, got {max_bitrate}",
        VideoEncoding::MIN_BITRATE,
        VideoEncoding::MAX_BITRATE
      ))
    })?;
    let max_framerate = VideoEncoding::max_framerate_from(max_framerate).ok_or_else(|| {
      invalid(format!(
        "maxFramerate must be above 0 and at most {}, got {max_framerate}",
        VideoEncoding::MAX_FRAMERATE
      ))
    })?;
    Ok(preset(width, height, max_bitrate, max_framerate))
  }
}

const fn preset(width: u32, height: u32, max_bitrate: u64, max_framerate: f64) -> VideoPreset {
  VideoPreset {
    width,
    height,
    encoding: VideoEncoding {
      max_bitrate,
      max_framerate,
    },
  }
}

/// LiveKit's default lower layers for a 16:9 source: 180p and 360p.
const DEFAULT_LAYERS_16_9: [VideoPreset; 2] = [preset(320, 180, 160_000, 15.0), preset(640, 360, 450_000, 20.0)];
/// LiveKit's default lower layers for a 4:3 source.
const DEFAULT_LAYERS_4_3: [VideoPreset; 2] = [preset(240, 180, 100_000, 15.0), preset(480, 360, 225_000, 20.0)];

/// The RTP stream ids of the layers, lowest first, as LiveKit's clients name them.
pub const RIDS: [&str; 3] = ["q", "h", "f"];

/// The most lower layers a user may choose (the top layer is the source itself).
pub const MAX_LOWER_LAYERS: usize = 2;

/// One layer a track sends.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
  /// The RTP stream id (`q`, `h` or `f`); empty for a track sent without simulcast.
  pub rid: String,
  /// LiveKit's quality of the rid.
  pub quality: proto::VideoQuality,
  /// The picture sent, in pixels.
  pub width: u32,
  /// The picture sent, in pixels.
  pub height: u32,
  /// The layer's encoder limits.
  pub encoding: VideoEncoding,
}

impl LayerSpec {
  /// As advertised to the server.
  pub fn to_proto(&self) -> proto::VideoLayer {
    proto::VideoLayer {
      quality: self.quality as i32,
      width: self.width,
      height: self.height,
      bitrate: self.encoding.max_bitrate.min(u64::from(u32::MAX)) as u32,
      ..Default::default()
    }
  }
}

/// LiveKit's quality for a rid (`f`: high, `h`: medium, `q`: low; anything else is the top).
pub fn quality_of_rid(rid: &str) -> proto::VideoQuality {
  match rid {
    "q" => proto::VideoQuality::Low,
    "h" => proto::VideoQuality::Medium,
    _ => proto::VideoQuality::High,
  }
}

fn is_16_9(width: u32, height: u32) -> bool {
  let (long, short) = (width.max(height), width.min(height).max(1));
  let ar = f64::from(long) / f64::from(short);
  (ar - 16.0 / 9.0).abs() < (ar - 4.0 / 3.0).abs()
}

/// LiveKit's default lower layers: 180p and 360p of the source's aspect; for a screen share,
/// one layer at half size and 3 fps with the bitrate that leaves each pixel its share.
pub fn default_lower_layers(width: u32, height: u32, top: VideoEncoding, is_screencast: bool) -> Vec<VideoPreset> {
  if is_screencast {
    let fps = 3.0;
    let per_frame = top.max_bitrate as f64 / 4.0 / (top.max_framerate / fps).max(1.0);
    return vec![preset(width / 2, height / 2, (per_frame as u64).max(150_000), fps)];
  }
  if is_16_9(width, height) {
    DEFAULT_LAYERS_16_9.to_vec()
  } else {
    DEFAULT_LAYERS_4_3.to_vec()
  }
}

/// Checks lower layers a user chose: at most [`MAX_LOWER_LAYERS`], each smaller than the
/// source, with an encoding the encoders take. Returns them smallest first.
pub fn check_lower_layers(width: u32, height: u32, layers: &[VideoPreset]) -> RtcResult<Vec<VideoPreset>> {
  let invalid = |reason: String| RtcError::InvalidArgument {
    name: "simulcastLayers",
    reason,
  };
  if layers.len() > MAX_LOWER_LAYERS {
    return Err(invalid(format!(
      "at most {MAX_LOWER_LAYERS} lower layers (the source is the top one), got {}",
      layers.len()
    )));
  }
  let source_short = width.min(height);
  for (i, l) in layers.iter().enumerate() {
    if l.width == 0 || l.height == 0 {
      return Err(invalid(format!(
        "layer {i}: width and height must be positive, got {}x{}",
        l.width, l.height
      )));
    }
    if l.width.min(l.height) >= source_short {
      return Err(invalid(format!(
        "layer {i}: {}x{} must be smaller than the {width}x{height} source",
        l.width, l.height
      )));
    }
    if VideoEncoding::max_bitrate_from(l.encoding.max_bitrate as f64).is_none() {
      return Err(invalid(format!(
        "layer {i}: maxBitrate must be an integer from {} to {}, got {}",
        VideoEncoding::MIN_BITRATE,
        VideoEncoding::MAX_BITRATE,
        l.encoding.max_bitrate
      )));
    }
    if VideoEncoding::max_framerate_from(l.encoding.max_framerate).is_none() {
      return Err(invalid(format!(
        "layer {i}: maxFramerate must be above 0 and at most {}, got {}",
        VideoEncoding::MAX_FRAMERATE,
        l.encoding.max_framerate
      )));
    }
  }
  let mut sorted = layers.to_vec();
  sorted.sort_by_key(|l| l.width.min(l.height));
  if sorted
    .windows(2)
    .any(|w| w[0].width.min(w[0].height) == w[1].width.min(w[1].height))
  {
    return Err(invalid("two layers have the same size".into()));
  }
  Ok(sorted)
}

/// The layers a `width` x `height` source sends with `top` as the full-size encoding: with
/// `simulcast`, LiveKit's choice (three layers from 960 pixels on the longer side, two from
/// 480, one below), the lower ones from `lower` (checked, smallest first); without, the source
/// alone. A single layer has no rid.
pub fn compute_layers(
  width: u32,
  height: u32,
  top: VideoEncoding,
  simulcast: bool,
  lower: &[VideoPreset],
) -> Vec<LayerSpec> {
  let single = || {
    vec![LayerSpec {
      rid: String::new(),
      quality: proto::VideoQuality::High,
      width,
      height,
      encoding: top,
    }]
  };
  if !simulcast || lower.is_empty() {
    return single();
  }
  let long = width.max(height);
  let chosen: Vec<VideoPreset> = if long >= 960 && lower.len() >= 2 {
    lower[..2].to_vec()
  } else if long >= 480 {
    lower[..1].to_vec()
  } else {
    return single();
  };
  let short = f64::from(width.min(height));
  let mut layers: Vec<LayerSpec> = chosen
    .iter()
    .enumerate()
    .map(|(i, p)| {
      // LiveKit scales by the shorter sides, so a layer keeps the source's aspect.
      let scale = (short / f64::from(p.width.min(p.height).max(1))).max(1.0);
      let even = |v: u32| (((f64::from(v) / scale) as u32) & !1).max(2);
      LayerSpec {
        rid: RIDS[i].to_string(),
        quality: quality_of_rid(RIDS[i]),
        width: even(width),
        height: even(height),
        encoding: p.encoding,
      }
    })
    .collect();
  let rid = RIDS[layers.len()];
  layers.push(LayerSpec {
    rid: rid.to_string(),
    quality: quality_of_rid(rid),
    width,
    height,
    encoding: top,
  });
  layers
}

#[cfg(test)]
mod tests {
  use super::*;

  const TOP: VideoEncoding = VideoEncoding {
    max_bitrate: 1_700_000,
    max_framerate: 30.0,
  };

  fn sizes(layers: &[LayerSpec]) -> Vec<(&str, u32, u32)> {
    layers.iter().map(|l| (l.rid.as_str(), l.width, l.height)).collect()
  }

  #[test]
  fn a_720p_source_sends_180p_360p_and_720p() {
    let layers = compute_layers(1280, 720, TOP, true, &default_lower_layers(1280, 720, TOP, false));
    assert_eq!(sizes(&layers), [("q", 320, 180), ("h", 640, 360), ("f", 1280, 720)]);
    assert_eq!(
      layers.iter().map(|l| l.encoding.max_bitrate).collect::<Vec<_>>(),
      [160_000, 450_000, 1_700_000]
    );
    assert_eq!(
      layers.iter().map(|l| l.quality).collect::<Vec<_>>(),
      [
        proto::VideoQuality::Low,
        proto::VideoQuality::Medium,
        proto::VideoQuality::High
      ]
    );
  }

  #[test]
  fn a_source_from_480_to_959_pixels_sends_two_layers() {
    let layers = compute_layers(640, 360, TOP, true, &default_lower_layers(640, 360, TOP, false));
    assert_eq!(sizes(&layers), [("q", 320, 180), ("h", 640, 360)]);
    let layers = compute_layers(640, 480, TOP, true, &default_lower_layers(640, 480, TOP, false));
    assert_eq!(sizes(&layers), [("q", 240, 180), ("h", 640, 480)]);
  }

  #[test]
  fn a_source_below_480_pixels_sends_one_layer_without_rid() {
    let layers = compute_layers(320, 240, TOP, true, &default_lower_layers(320, 240, TOP, false));
    assert_eq!(sizes(&layers), [("", 320, 240)]);
  }

  #[test]
  fn without_simulcast_the_source_alone_is_sent() {
    let layers = compute_layers(1280, 720, TOP, false, &default_lower_layers(1280, 720, TOP, false));
    assert_eq!(sizes(&layers), [("", 1280, 720)]);
    assert_eq!(layers[0].encoding, TOP);
  }

  #[test]
  fn portrait_sources_keep_their_aspect() {
    let layers = compute_layers(720, 1280, TOP, true, &default_lower_layers(720, 1280, TOP, false));
    assert_eq!(sizes(&layers), [("q", 180, 320), ("h", 360, 640), ("f", 720, 1280)]);
  }

  #[test]
  fn a_screen_share_gets_one_half_size_layer_at_3_fps() {
    let top = VideoEncoding {
      max_bitrate: 1_500_000,
      max_framerate: 15.0,
    };
    let lower = default_lower_layers(1920, 1080, top, true);
    let layers = compute_layers(1920, 1080, top, true, &lower);
    assert_eq!(sizes(&layers), [("q", 960, 540), ("h", 1920, 1080)]);
    assert_eq!(layers[0].encoding.max_framerate, 3.0);
    assert_eq!(layers[0].encoding.max_bitrate, 150_000);
  }

  #[test]
  fn chosen_layers_are_sorted_and_used() {
    let chosen = [preset(640, 360, 500_000, 30.0), preset(160, 90, 60_000, 10.0)];
    let lower = check_lower_layers(1920, 1080, &chosen).unwrap();
    let layers = compute_layers(1920, 1080, TOP, true, &lower);
    assert_eq!(sizes(&layers), [("q", 160, 90), ("h", 640, 360), ("f", 1920, 1080)]);
    assert_eq!(layers[0].encoding.max_bitrate, 60_000);
  }

  #[test]
  fn chosen_layers_are_checked() {
    let ok = preset(320, 180, 160_000, 15.0);
    let cases: Vec<Vec<VideoPreset>> = vec![
      vec![ok, preset(480, 270, 300_000, 15.0), preset(640, 360, 500_000, 15.0)],
      vec![preset(0, 180, 160_000, 15.0)],
      vec![preset(1280, 720, 160_000, 15.0)],
      vec![preset(320, 180, 999, 15.0)],
      vec![preset(320, 180, 160_000, 0.0)],
      vec![preset(320, 180, 160_000, f64::NAN)],
      vec![ok, ok],
    ];
    for layers in cases {
      match check_lower_layers(1280, 720, &layers) {
        Err(e) => assert_eq!(e.code(), "ERR_INVALID_ARGUMENT", "{layers:?}"),
        Ok(_) => panic!("accepted {layers:?}"),
      }
    }
    assert!(check_lower_layers(1280, 720, &[ok]).is_ok());
  }
}
