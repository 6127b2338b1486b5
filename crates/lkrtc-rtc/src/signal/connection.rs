//! The WebSocket under the signal client: connect with typed failures, then send and receive
//! protobuf `SignalRequest`/`SignalResponse` frames. No protocol state lives here.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livekit_protocol as proto;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::error::TlsError;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use url::Url;

use super::tls;
use super::url::{address, redact, validate_url};
use crate::{RtcError, RtcResult};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sends `SignalRequest`s.
pub struct SignalWriter {
  sink: futures_util::stream::SplitSink<Ws, Message>,
}

/// Receives `SignalResponse`s.
pub struct SignalReader {
  stream: futures_util::stream::SplitStream<Ws>,
}

/// Opens the WebSocket at `url` (built by [`super::url::signal_url`]). `base` is the server URL,
/// used to ask `/rtc/validate` why an upgrade was refused; `tls_config` is used for `wss://` (see
/// [`super::tls::client_config`]).
pub async fn connect(
  url: &Url,
  base: &Url,
  token: &str,
  tls_config: &Arc<rustls::ClientConfig>,
  timeout: Duration,
) -> RtcResult<(SignalWriter, SignalReader)> {
  let attempt = async {
    let request = url.as_str();
    let connector = Connector::Rustls(tls_config.clone());
    match tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector)).await {
      Ok((ws, _response)) => {
        let (sink, stream) = ws.split();
        Ok((SignalWriter { sink }, SignalReader { stream }))
      }
      Err(err) => Err(map_connect_error(err, url, base, token).await),
    }
  };
  match tokio::time::timeout(timeout, attempt).await {
    Ok(result) => result,
    Err(_) => Err(RtcError::ConnectTimeout {
      timeout_ms: timeout.as_millis() as u64,
      stage: "websocket",
    }),
  }
}

async fn map_connect_error(err: tungstenite::Error, url: &Url, base: &Url, token: &str) -> RtcError {
  let address = address(url);
  match err {
    tungstenite::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
      RtcError::ConnectionRefused { address }
    }
    // tokio-rustls reports a failed handshake as an I/O error around the rustls error.
    tungstenite::Error::Io(e) => match tls::rustls_error(&e) {
      Some(tls_error) => tls::handshake_error(tls_error, url.host_str().unwrap_or(""), address),
      None => RtcError::ConnectionFailed {
        address,
        reason: e.to_string(),
      },
    },
    tungstenite::Error::Tls(TlsError::Rustls(e)) => tls::handshake_error(&e, url.host_str().unwrap_or(""), address),
    tungstenite::Error::Tls(e) => RtcError::Tls {
      address,
      reason: e.to_string(),
    },
    tungstenite::Error::Url(e) => RtcError::InvalidUrl { reason: e.to_string() },
    tungstenite::Error::Http(response) => {
      let status = response.status().as_u16();
      let body = response
        .body()
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .unwrap_or_default();
      let reason = if body.is_empty() {
        validate(base, token).await.unwrap_or_default()
      } else {
        body
      };
      let reason = if reason.is_empty() {
        format!("HTTP {status} from {}", redact(url))
      } else {
        scrub(&reason, token)
      };
      match status {
        401 | 403 => RtcError::Unauthorized { reason },
        _ => RtcError::Server { status, reason },
      }
    }
    other => RtcError::ConnectionFailed {
      address,
      reason: other.to_string(),
    },
  }
}

/// The server quotes the token in some refusals: never pass it on.
fn scrub(text: &str, token: &str) -> String {
  if token.is_empty() {
    return text.to_string();
  }
  text.replace(token, "<token>")
}

/// Asks `GET /rtc/validate` for the reason of a refused upgrade. Plain `http` only: over `https`
/// the upgrade's own response body is what we report.
async fn validate(base: &Url, token: &str) -> Option<String> {
  let url = validate_url(base, token);
  if url.scheme() != "http" {
    return None;
  }
  let host = url.host_str()?.to_string();
  let port = url.port_or_known_default()?;
  let target = format!("{}?{}", url.path(), url.query().unwrap_or(""));
  let fetch = async {
    let mut stream = TcpStream::connect((host.as_str(), port)).await.ok()?;
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response);
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some(body.trim().to_string())
  };
  tokio::time::timeout(Duration::from_secs(2), fetch).await.ok().flatten()
}

impl SignalWriter {
  pub async fn send(&mut self, message: proto::signal_request::Message) -> RtcResult<()> {
    let bytes = proto::SignalRequest { message: Some(message) }.encode_to_vec();
    self
      .sink
      .send(Message::Binary(bytes.into()))
      .await
      .map_err(|e| RtcError::Signal(format!("send failed: {e}")))
  }

  pub async fn close(&mut self) {
    let _ = self.sink.close().await;
  }
}

impl SignalReader {
  /// The next message from the server; `None` once the socket is closed.
  pub async fn recv(&mut self) -> Option<RtcResult<proto::signal_response::Message>> {
    loop {
      let frame = match self.stream.next().await? {
        Ok(frame) => frame,
        Err(e) => return Some(Err(RtcError::Signal(format!("websocket: {e}")))),
      };
      let decoded = match frame {
        Message::Binary(bytes) => proto::SignalResponse::decode(bytes.as_ref()),
        Message::Close(_) => return None,
        // Ping/Pong frames are answered by tungstenite; text frames are not used by LiveKit.
        _ => continue,
      };
      match decoded {
        Ok(proto::SignalResponse { message: Some(message) }) => return Some(Ok(message)),
        Ok(_) => continue,
        Err(e) => {
          tracing::warn!("undecodable signal response: {e}");
          continue;
        }
      }
    }
  }
}
