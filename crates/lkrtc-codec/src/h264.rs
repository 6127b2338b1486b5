//! H.264 Constrained Baseline through openh264 (built from its bundled source), with
//! libwebrtc's settings: real-time camera usage, bitrate rate control, no B-frames (Baseline has
//! none), one slice per thread, IDR only on request. Output is an Annex-B byte stream; openh264
//! writes SPS and PPS before every IDR.

use std::os::raw::{c_int, c_void};
use std::ptr;

use lkrtc_video::VideoFrame;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;
use openh264::OpenH264API;
use openh264_sys2 as sys;
use openh264_sys2::source::APILoader;

use crate::i420::{copy_to_frame, SrcPlane};
use crate::{
  check_config, check_frame, clamp_fps, encoder_threads, CodecError, EncodedFrame, EncoderConfig, VideoCodec,
  VideoDecoder, VideoEncoder,
};

/// openh264's largest frame (level 5.2): 3840x2160 either way round.
const MAX_LONG_SIDE: u32 = 3840;
const MAX_SHORT_SIDE: u32 = 2160;

/// The encoder's function table, checked once so that no call goes through a null pointer.
#[allow(non_snake_case)]
struct Vtbl {
  InitializeExt: unsafe extern "C" fn(*mut sys::ISVCEncoder, *const sys::SEncParamExt) -> c_int,
  GetDefaultParams: unsafe extern "C" fn(*mut sys::ISVCEncoder, *mut sys::SEncParamExt) -> c_int,
  Uninitialize: unsafe extern "C" fn(*mut sys::ISVCEncoder) -> c_int,
  EncodeFrame: unsafe extern "C" fn(*mut sys::ISVCEncoder, *const sys::SSourcePicture, *mut sys::SFrameBSInfo) -> c_int,
  ForceIntraFrame: unsafe extern "C" fn(*mut sys::ISVCEncoder, bool) -> c_int,
  SetOption: unsafe extern "C" fn(*mut sys::ISVCEncoder, sys::ENCODER_OPTION, *mut c_void) -> c_int,
}

pub(crate) struct H264Encoder {
  config: EncoderConfig,
  /// The size encoded: the configured one made even.
  coded: (u32, u32),
  enc: *mut sys::ISVCEncoder,
  vtbl: Vtbl,
  initialized: bool,
  // Large (128 layer infos): boxed so the encoder itself stays small to move.
  info: Box<sys::SFrameBSInfo>,
  first: bool,
}

// SAFETY: the openh264 encoder instance is owned by this value alone and only used through
// &mut self; openh264 encoders carry no thread affinity.
unsafe impl Send for H264Encoder {}

impl H264Encoder {
  pub(crate) fn new(config: &EncoderConfig) -> Result<Self, CodecError> {
    check_config(VideoCodec::H264, config)?;
    let (w, h) = (config.width, config.height);
    let bad = |reason: String| CodecError::InvalidConfig {
      codec: VideoCodec::H264,
      reason,
    };
    // 4:2:0 H.264 codes whole chroma samples: an odd size cannot be signalled (the SPS crops in
    // steps of 2). An odd frame loses its last column and/or row instead (coded_size).
    let (w, h) = coded_size(w, h);
    if w == 0 || h == 0 {
      return Err(bad(format!(
        "H.264 needs at least 2x2 pixels, got {}x{}",
        config.width, config.height
      )));
    }
    if w.max(h) > MAX_LONG_SIDE || w.min(h) > MAX_SHORT_SIDE {
      return Err(bad(format!(
        "openh264 encodes at most 3840x2160 (or 2160x3840), got {w}x{h}"
      )));
    }
    let init_err = |detail: String| CodecError::EncoderInit {
      codec: VideoCodec::H264,
      detail,
    };

    let mut enc: *mut sys::ISVCEncoder = ptr::null_mut();
    // SAFETY: enc is a valid out-pointer; openh264 writes a new instance or leaves it null.
    let rc = unsafe { APILoader::WelsCreateSVCEncoder(&mut enc) };
    if rc != 0 || enc.is_null() {
      return Err(init_err(format!("WelsCreateSVCEncoder returned {rc}")));
    }
    // SAFETY: enc is a live instance: a pointer to its function table.
    let table = unsafe { **enc };
    let vtbl = match (
      table.InitializeExt,
      table.GetDefaultParams,
      table.Uninitialize,
      table.EncodeFrame,
      table.ForceIntraFrame,
      table.SetOption,
    ) {
      (Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)) => Vtbl {
        InitializeExt: a,
        GetDefaultParams: b,
        Uninitialize: c,
        EncodeFrame: d,
        ForceIntraFrame: e,
        SetOption: f,
      },
      _ => {
        // SAFETY: enc came from WelsCreateSVCEncoder and is destroyed once.
        unsafe { APILoader::WelsDestroySVCEncoder(enc) };
        return Err(init_err("openh264 function table incomplete".into()));
      }
    };
    let mut encoder = Self {
      config: *config,
      coded: (w, h),
      enc,
      vtbl,
      initialized: false,
      info: Box::default(),
      first: true,
    };

    let mut params = sys::SEncParamExt::default();
    // SAFETY: enc is live; params is a writable SEncParamExt.
    let rc = unsafe { (encoder.vtbl.GetDefaultParams)(encoder.enc, &mut params) };
    if rc != 0 {
      return Err(init_err(format!("GetDefaultParams returned {rc}")));
    }
    let threads = encoder_threads(w, h);
    let fps = clamp_fps(config.max_framerate) as f32;
    let bitrate = bitrate_c(config.bitrate_bps);
    params.iUsageType = if config.screen_content {
      sys::SCREEN_CONTENT_REAL_TIME
    } else {
      sys::CAMERA_VIDEO_REAL_TIME
    };
    params.iPicWidth = w as c_int;
    params.iPicHeight = h as c_int;
    params.iTargetBitrate = bitrate;
    params.iMaxBitrate = sys::UNSPECIFIED_BIT_RATE as c_int;
    params.iRCMode = sys::RC_BITRATE_MODE;
    params.fMaxFrameRate = fps;
    // openh264's rate control holds the bitrate only by skipping frames (without it, a hard
    // scene overshoots several times); libwebrtc enables it too. encode() then returns None.
    params.bEnableFrameSkip = true;
    // 0: no periodic IDR; IDRs come on request (PLI) only.
    params.uiIntraPeriod = 0;
    params.eSpsPpsIdStrategy = sys::CONSTANT_ID;
    params.uiMaxNalSize = 0;
    params.iMultipleThreadIdc = threads as u16;
    params.bEnableDenoise = false;
    params.bEnableLongTermReference = false;
    params.iEntropyCodingModeFlag = 0; // CAVLC: Baseline has no CABAC
    params.iSpatialLayerNum = 1;
    params.iTemporalLayerNum = 1;
    let layer = &mut params.sSpatialLayers[0];
    layer.iVideoWidth = w as c_int;
    layer.iVideoHeight = h as c_int;
    layer.fFrameRate = fps;
    layer.iSpatialBitrate = bitrate;
    layer.iMaxSpatialBitrate = sys::UNSPECIFIED_BIT_RATE as c_int;
    layer.uiProfileIdc = sys::PRO_BASELINE;
    // The level follows the frame size (openh264 picks the lowest that fits).
    layer.uiLevelIdc = sys::LEVEL_UNKNOWN;
    // As libwebrtc for packetization-mode=1: one slice per thread so threads can share a frame.
    layer.sSliceArgument.uiSliceMode = sys::SM_FIXEDSLCNUM_SLICE;
    layer.sSliceArgument.uiSliceNum = threads as u32;

    // Errors come back as return codes; openh264's own log would go to stderr.
    let mut log_level: c_int = sys::WELS_LOG_QUIET as c_int;
    encoder
      .set_option(sys::ENCODER_OPTION_TRACE_LEVEL, &mut log_level)
      .map_err(init_err)?;
    // SAFETY: enc is live and params fully initialised.
    let rc = unsafe { (encoder.vtbl.InitializeExt)(encoder.enc, &params) };
    if rc != 0 {
      return Err(init_err(format!("InitializeExt returned {rc} for {w}x{h}")));
    }
    encoder.initialized = true;
    let mut format: c_int = sys::videoFormatI420 as c_int;
    encoder
      .set_option(sys::ENCODER_OPTION_DATAFORMAT, &mut format)
      .map_err(init_err)?;
    Ok(encoder)
  }

  fn set_option<T>(&mut self, option: sys::ENCODER_OPTION, value: &mut T) -> Result<(), String> {
    // SAFETY: enc is live and initialised; the caller passes the type openh264 documents for
    // `option`, and the pointer is only read during the call.
    let rc = unsafe { (self.vtbl.SetOption)(self.enc, option, value as *mut T as *mut c_void) };
    if rc != 0 {
      return Err(format!("SetOption({option}) returned {rc}"));
    }
    Ok(())
  }
}

/// The size an H.264 stream of a `width` x `height` source has: each made even by dropping the
/// last column or row. libwebrtc (rtc-node, the Python SDK) crops to multiples of 4 instead
/// (641x359 -> 640x356); 4:2:0 needs only 2, so at most one column and one row are lost here.
pub(crate) fn coded_size(width: u32, height: u32) -> (u32, u32) {
  (width & !1, height & !1)
}

fn bitrate_c(bps: u32) -> c_int {
  c_int::try_from(bps).unwrap_or(c_int::MAX)
}

impl Drop for H264Encoder {
  fn drop(&mut self) {
    // SAFETY: enc came from WelsCreateSVCEncoder; uninitialised only if it was initialised, and
    // destroyed once, here.
    unsafe {
      if self.initialized {
        (self.vtbl.Uninitialize)(self.enc);
      }
      APILoader::WelsDestroySVCEncoder(self.enc);
    }
  }
}

impl VideoEncoder for H264Encoder {
  fn codec(&self) -> VideoCodec {
    VideoCodec::H264
  }

  fn encode(
    &mut self,
    frame: &VideoFrame<&[u8]>,
    timestamp_us: i64,
    force_keyframe: bool,
  ) -> Result<Option<EncodedFrame>, CodecError> {
    check_frame(VideoCodec::H264, &self.config, frame)?;
    let encode_err = |detail: String| CodecError::Encode {
      codec: VideoCodec::H264,
      detail,
    };

    if force_keyframe && !self.first {
      // SAFETY: enc is live and initialised.
      let rc = unsafe { (self.vtbl.ForceIntraFrame)(self.enc, true) };
      if rc != 0 {
        return Err(encode_err(format!("ForceIntraFrame returned {rc}")));
      }
    }

    let layout = frame.layout();
    let planes = layout.planes();
    let data = frame.data();
    let mut pic = sys::SSourcePicture {
      iColorFormat: sys::videoFormatI420 as c_int,
      iPicWidth: self.coded.0 as c_int,
      iPicHeight: self.coded.1 as c_int,
      uiTimeStamp: timestamp_us.div_euclid(1000),
      ..Default::default()
    };
    // The coded picture is the frame's top-left corner: the planes' strides stay the frame's.
    for (i, p) in planes.iter().enumerate().take(3) {
      pic.iStride[i] = p.stride as c_int;
      // openh264 only reads the source picture: the mut pointer is never written through.
      pic.pData[i] = data[p.offset..].as_ptr() as *mut u8;
    }

    // SAFETY: enc is live; pic points into `data`, alive for the call; info is writable.
    let rc = unsafe { (self.vtbl.EncodeFrame)(self.enc, &pic, &mut *self.info) };
    if rc != 0 {
      return Err(encode_err(format!("EncodeFrame returned {rc}")));
    }
    self.first = false;
    let info = &*self.info;
    if info.eFrameType == sys::videoFrameTypeSkip || info.eFrameType == sys::videoFrameTypeInvalid {
      return Ok(None);
    }

    let mut out = Vec::with_capacity(usize::try_from(info.iFrameSizeInBytes).unwrap_or(0));
    let layers = usize::try_from(info.iLayerNum).unwrap_or(0).min(info.sLayerInfo.len());
    for layer in &info.sLayerInfo[..layers] {
      let nals = usize::try_from(layer.iNalCount).unwrap_or(0);
      if nals == 0 || layer.pNalLengthInByte.is_null() || layer.pBsBuf.is_null() {
        continue;
      }
      // SAFETY: openh264 gives iNalCount NAL lengths for the layer, valid until the next call.
      let lengths = unsafe { std::slice::from_raw_parts(layer.pNalLengthInByte, nals) };
      let total: usize = lengths.iter().map(|&n| usize::try_from(n).unwrap_or(0)).sum();
      // SAFETY: the layer's NAL units (each with its start code) lie back to back in pBsBuf.
      let bytes = unsafe { std::slice::from_raw_parts(layer.pBsBuf, total) };
      out.extend_from_slice(bytes);
    }
    if out.is_empty() {
      return Ok(None);
    }
    let keyframe = info.eFrameType == sys::videoFrameTypeIDR;
    Ok(Some(EncodedFrame {
      data: out,
      keyframe,
      timestamp_us,
    }))
  }

  fn set_bitrate(&mut self, bitrate_bps: u32) {
    self.config.bitrate_bps = bitrate_bps;
    let mut rate = sys::SBitrateInfo {
      iLayer: sys::SPATIAL_LAYER_ALL,
      iBitrate: bitrate_c(bitrate_bps),
    };
    // A failure leaves the previous rate in force, the best this infallible setter can do.
    let _ = self.set_option(sys::ENCODER_OPTION_BITRATE, &mut rate);
  }

  fn set_framerate(&mut self, fps: f64) {
    let mut fps = clamp_fps(fps) as f32;
    let _ = self.set_option(sys::ENCODER_OPTION_FRAME_RATE, &mut fps);
  }
}

pub(crate) struct H264Decoder {
  decoder: Decoder,
}

impl H264Decoder {
  pub(crate) fn new() -> Result<Self, CodecError> {
    Ok(Self {
      decoder: open_decoder()?,
    })
  }
}

fn open_decoder() -> Result<Decoder, CodecError> {
  Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new()).map_err(|e| CodecError::DecoderInit {
    codec: VideoCodec::H264,
    detail: e.to_string(),
  })
}

fn decode_err(detail: String) -> CodecError {
  CodecError::Decode {
    codec: VideoCodec::H264,
    detail,
  }
}

impl VideoDecoder for H264Decoder {
  fn codec(&self) -> VideoCodec {
    VideoCodec::H264
  }

  fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, CodecError> {
    if data.is_empty() {
      return Err(decode_err("empty frame".into()));
    }
    if i32::try_from(data.len()).is_err() {
      return Err(decode_err(format!("frame too large: {} bytes", data.len())));
    }
    if !has_start_code(data) {
      return Err(decode_err("not an Annex-B byte stream (no start code)".into()));
    }
    let result = decode_once(&mut self.decoder, data);
    if matches!(result, Ok(Some(_))) || !has_idr(data) {
      return result;
    }
    // A damaged stream can leave openh264 wedged, ignoring even keyframes from then on (e.g. a
    // corrupted SPS that reads as an SVC prefix NAL): a keyframe that gives no picture gets a
    // fresh decoder, as a new subscriber would have.
    self.decoder = open_decoder()?;
    decode_once(&mut self.decoder, data)
  }
}

fn decode_once(decoder: &mut Decoder, data: &[u8]) -> Result<Option<VideoFrame>, CodecError> {
  let Some(yuv) = decoder.decode(data).map_err(|e| decode_err(e.to_string()))? else {
    return Ok(None);
  };
  let (w, h) = yuv.dimensions();
  let (sy, su, sv) = yuv.strides();
  let (w, h) = (
    u32::try_from(w).map_err(|_| decode_err("bad width".into()))?,
    u32::try_from(h).map_err(|_| decode_err("bad height".into()))?,
  );
  if w == 0 || h == 0 || w > lkrtc_video::MAX_DIMENSION || h > lkrtc_video::MAX_DIMENSION {
    return Err(decode_err(format!("unexpected picture size {w}x{h}")));
  }
  copy_to_frame(
    w,
    h,
    [
      SrcPlane {
        data: yuv.y(),
        stride: sy,
      },
      SrcPlane {
        data: yuv.u(),
        stride: su,
      },
      SrcPlane {
        data: yuv.v(),
        stride: sv,
      },
    ],
  )
  .map(Some)
  .map_err(decode_err)
}

/// True when the Annex-B access unit `data` holds an IDR slice (NAL type 5).
fn has_idr(data: &[u8]) -> bool {
  data
    .windows(4)
    .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1f == 5)
}

/// True when `data` starts with an Annex-B start code (`00 00 01` or `00 00 00 01`).
fn has_start_code(data: &[u8]) -> bool {
  data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}
